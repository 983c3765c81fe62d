import Foundation
import Logging
import NIOCore
import PostgresNIO
import StranglerCore

/// Rollups in PostgreSQL: the same two levels as the SQLite store (``RollupLevel``), each
/// written per table with one `INSERT … SELECT FROM UNNEST … ON CONFLICT DO UPDATE` that adds to
/// what the periods hold.
extension PostgresDiffStore {
    /// Adds rollups to their minutes and hours inside the caller's transaction.
    static func add(_ rollups: [RouteMinuteRollup], _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard !rollups.isEmpty else { return }
        for level in RollupLevel.allCases {
            // One row per period in each statement: ON CONFLICT can't touch a row twice, and
            // several minutes of a batch fall in one hour.
            var periods: [RouteMinuteRollup.Key: RouteMinuteRollup] = [:]
            for rollup in rollups {
                var key = rollup.key
                key.minute = level.start(of: key.minute)
                var moved = rollup
                moved.key = key
                if periods[key] == nil { periods[key] = moved } else { periods[key]!.merge(moved) }
            }
            // In key order: two writers touching the same rows (the recorder and the traffic
            // writer of one instance) then lock them in the same order and can't deadlock.
            try await add(periods.values.sorted(by: Self.keyOrder), level: level, connection, logger)
        }
        let compared = rollups.filter { $0.samples > 0 || !$0.uncomparable.isEmpty || !$0.skipped.isEmpty || $0.dropped > 0 }
        if !compared.isEmpty {
            var first: [String: Date] = [:]
            for rollup in compared { first[rollup.key.routeID] = min(first[rollup.key.routeID] ?? rollup.key.minute, rollup.key.minute) }
            // Shared by every instance: sorted, so concurrent writers lock the rows in one order,
            // and updated only when earlier, so a route's row is rarely written at all.
            let routes = first.keys.sorted()
            try await connection.query(
                """
                INSERT INTO route_first_compared AS t (route_id, first_compared)
                SELECT * FROM UNNEST(\(routes), \(routes.map { StoredTimestamp.format(first[$0]!) }))
                ON CONFLICT (route_id) DO UPDATE SET first_compared = excluded.first_compared
                    WHERE t.first_compared > excluded.first_compared
                """,
                logger: logger
            )
        }
    }

    /// Route, then period, then instance: the order rows are written (and locked) in.
    static func keyOrder(_ a: RouteMinuteRollup, _ b: RouteMinuteRollup) -> Bool {
        (a.key.routeID, a.key.minute, a.key.instanceID) < (b.key.routeID, b.key.minute, b.key.instanceID)
    }

    private static func add(_ rollups: [RouteMinuteRollup], level: RollupLevel, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let p = level.tablePrefix
        let routes = rollups.map(\.key.routeID)
        let minutes = rollups.map { StoredTimestamp.format($0.key.minute) }
        let instances = rollups.map(\.key.instanceID)
        try await connection.query(
            """
            INSERT INTO \(unescaped: p)rollups AS t (route_id, minute, instance_id, matches, mismatches, status_mismatches, header_mismatches,
                body_mismatches, legacy_served, service_served, service_errors, dropped)
            SELECT * FROM UNNEST(\(routes), \(minutes), \(instances), \(rollups.map(\.matches)), \(rollups.map(\.mismatches)),
                \(rollups.map(\.statusMismatches)), \(rollups.map(\.headerMismatches)), \(rollups.map(\.bodyMismatches)),
                \(rollups.map(\.legacyServed)), \(rollups.map(\.serviceServed)), \(rollups.map(\.serviceErrors)), \(rollups.map(\.dropped)))
            ON CONFLICT (route_id, minute, instance_id) DO UPDATE SET
                matches = t.matches + excluded.matches, mismatches = t.mismatches + excluded.mismatches,
                status_mismatches = t.status_mismatches + excluded.status_mismatches,
                header_mismatches = t.header_mismatches + excluded.header_mismatches,
                body_mismatches = t.body_mismatches + excluded.body_mismatches,
                legacy_served = t.legacy_served + excluded.legacy_served, service_served = t.service_served + excluded.service_served,
                service_errors = t.service_errors + excluded.service_errors, dropped = t.dropped + excluded.dropped
            """,
            logger: logger
        )
        var reasons: (route: [String], minute: [String], instance: [String], outcome: [String], reason: [String], count: [Int]) =
            ([], [], [], [], [], [])
        var pointers:
            (route: [String], minute: [String], instance: [String], pointer: [String], kind: [String], count: [Int], first: [String], last: [String]) =
                ([], [], [], [], [], [], [], [])
        var signatures: (route: [String], minute: [String], instance: [String], signature: [String], count: [Int]) = ([], [], [], [], [])
        for (index, rollup) in rollups.enumerated() {
            for (outcome, counts) in [("uncomparable", rollup.uncomparable), ("skipped", rollup.skipped)] {
                for (reason, count) in counts {
                    reasons.route.append(routes[index])
                    reasons.minute.append(minutes[index])
                    reasons.instance.append(instances[index])
                    reasons.outcome.append(outcome)
                    reasons.reason.append(reason)
                    reasons.count.append(count)
                }
            }
            for (key, tally) in rollup.pointers {
                pointers.route.append(routes[index])
                pointers.minute.append(minutes[index])
                pointers.instance.append(instances[index])
                pointers.pointer.append(key.pointer)
                pointers.kind.append(key.kind.rawValue)
                pointers.count.append(tally.count)
                pointers.first.append(StoredTimestamp.format(tally.firstSeen))
                pointers.last.append(StoredTimestamp.format(tally.lastSeen))
            }
            for (signature, count) in rollup.signatures {
                signatures.route.append(routes[index])
                signatures.minute.append(minutes[index])
                signatures.instance.append(instances[index])
                signatures.signature.append(signature.canonicalText)
                signatures.count.append(count)
            }
        }
        if !reasons.route.isEmpty {
            try await connection.query(
                """
                INSERT INTO \(unescaped: p)rollup_reasons AS t (route_id, minute, instance_id, outcome, reason, count)
                SELECT * FROM UNNEST(\(reasons.route), \(reasons.minute), \(reasons.instance), \(reasons.outcome), \(reasons.reason), \(reasons.count))
                ON CONFLICT (route_id, minute, instance_id, outcome, reason) DO UPDATE SET count = t.count + excluded.count
                """,
                logger: logger
            )
        }
        if !pointers.route.isEmpty {
            try await connection.query(
                """
                INSERT INTO \(unescaped: p)rollup_pointers AS t (route_id, minute, instance_id, pointer, kind, count, first_seen, last_seen)
                SELECT * FROM UNNEST(\(pointers.route), \(pointers.minute), \(pointers.instance), \(pointers.pointer), \(pointers.kind),
                    \(pointers.count), \(pointers.first), \(pointers.last))
                ON CONFLICT (route_id, minute, instance_id, pointer, kind) DO UPDATE SET count = t.count + excluded.count,
                    first_seen = LEAST(t.first_seen, excluded.first_seen), last_seen = GREATEST(t.last_seen, excluded.last_seen)
                """,
                logger: logger
            )
        }
        if !signatures.route.isEmpty {
            try await connection.query(
                """
                INSERT INTO \(unescaped: p)rollup_signatures AS t (route_id, minute, instance_id, signature, count)
                SELECT * FROM UNNEST(\(signatures.route), \(signatures.minute), \(signatures.instance), \(signatures.signature), \(signatures.count))
                ON CONFLICT (route_id, minute, instance_id, signature) DO UPDATE SET count = t.count + excluded.count
                """,
                logger: logger
            )
        }
        try await addLatencies(rollups, level: level, connection, logger)
    }

    /// Histograms merge in Swift: the stored ones of the periods written are read and locked,
    /// merged with the new, and written back, in the caller's transaction. Each instance writes
    /// only its own rows, so the locks never wait on another instance.
    private static func addLatencies(
        _ rollups: [RouteMinuteRollup],
        level: RollupLevel,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        struct PairKey: Hashable {
            var rollup: RouteMinuteRollup.Key
            var pair: RouteMinuteRollup.UpstreamPair
        }
        var merged: [PairKey: RouteMinuteRollup.PairLatency] = [:]
        for rollup in rollups {
            for (pair, latency) in rollup.latency { merged[PairKey(rollup: rollup.key, pair: pair)] = latency }
        }
        guard !merged.isEmpty else { return }
        let p = level.tablePrefix
        let keys = merged.keys.sorted {
            ($0.rollup.routeID, $0.rollup.minute, $0.rollup.instanceID, $0.pair.primary, $0.pair.candidate)
                < ($1.rollup.routeID, $1.rollup.minute, $1.rollup.instanceID, $1.pair.primary, $1.pair.candidate)
        }
        // Rows that don't exist yet are made empty first, so the read below can lock every row it
        // merges into: two writers of one key (two instances given the same name) then merge in
        // turn instead of the later overwriting the earlier.
        let empty = ByteBuffer(bytes: LatencyDistribution().serialized())
        try await connection.query(
            """
            INSERT INTO \(unescaped: p)rollup_latencies (route_id, minute, instance_id, primary_upstream, candidate_upstream,
                primary_histogram, candidate_histogram)
            SELECT route_id, minute, instance_id, primary_upstream, candidate_upstream, \(empty), \(empty)
            FROM UNNEST(\(keys.map(\.rollup.routeID)), \(keys.map { StoredTimestamp.format($0.rollup.minute) }), \(keys.map(\.rollup.instanceID)),
                \(keys.map(\.pair.primary)), \(keys.map(\.pair.candidate))) AS k(route_id, minute, instance_id, primary_upstream, candidate_upstream)
            ON CONFLICT DO NOTHING
            """,
            logger: logger
        )
        let stored = try await connection.query(
            """
            SELECT t.route_id, t.minute, t.instance_id, t.primary_upstream, t.candidate_upstream, t.primary_histogram, t.candidate_histogram
            FROM \(unescaped: p)rollup_latencies t
            JOIN UNNEST(\(keys.map(\.rollup.routeID)), \(keys.map { StoredTimestamp.format($0.rollup.minute) }), \(keys.map(\.rollup.instanceID)),
                \(keys.map(\.pair.primary)), \(keys.map(\.pair.candidate))) AS k(route_id, minute, instance_id, primary_upstream, candidate_upstream)
                USING (route_id, minute, instance_id, primary_upstream, candidate_upstream)
            FOR UPDATE OF t
            """,
            logger: logger
        )
        for try await (route, minute, instance, primary, candidate, primaryBlob, candidateBlob) in stored.decode(
            (String, String, String, String, String, ByteBuffer, ByteBuffer).self
        ) {
            guard let date = StoredTimestamp.parse(minute) else { continue }
            let key = PairKey(
                rollup: RouteMinuteRollup.Key(routeID: route, minute: date, instanceID: instance),
                pair: RouteMinuteRollup.UpstreamPair(primary: primary, candidate: candidate)
            )
            // A stored histogram that can't be read is replaced, as the SQLite store does: the
            // period loses its earlier latencies, and its counts stay exact.
            if let old = try? LatencyDistribution(serialized: primaryBlob.readableBytesView) { merged[key]?.primary.merge(old) }
            if let old = try? LatencyDistribution(serialized: candidateBlob.readableBytesView) { merged[key]?.candidate.merge(old) }
        }
        let pairs = keys.map { ($0, merged[$0]!) }
        try await connection.query(
            """
            UPDATE \(unescaped: p)rollup_latencies AS t SET primary_histogram = k.primary_histogram, candidate_histogram = k.candidate_histogram
            FROM UNNEST(\(pairs.map(\.0.rollup.routeID)), \(pairs.map { StoredTimestamp.format($0.0.rollup.minute) }),
                \(pairs.map(\.0.rollup.instanceID)), \(pairs.map(\.0.pair.primary)), \(pairs.map(\.0.pair.candidate)),
                \(pairs.map { ByteBuffer(bytes: $0.1.primary.serialized()) }), \(pairs.map { ByteBuffer(bytes: $0.1.candidate.serialized()) }))
                AS k(route_id, minute, instance_id, primary_upstream, candidate_upstream, primary_histogram, candidate_histogram)
            WHERE t.route_id = k.route_id AND t.minute = k.minute AND t.instance_id = k.instance_id
                AND t.primary_upstream = k.primary_upstream AND t.candidate_upstream = k.candidate_upstream
            """,
            logger: logger
        )
    }

    // MARK: Reading

    /// A route's rollups at one level for the periods from `from`'s period up to (not
    /// including) `to`, every instance's, oldest first.
    public func rollups(routeID: String, level: RollupLevel = .minute, from: Date, to: Date? = nil) async throws -> [RouteMinuteRollup] {
        try await snapshot { [logger] connection in
            try await Self.rollups(connection, routeID: routeID, level: level, from: from, to: to, logger: logger)
        }
    }

    static func rollups(
        _ connection: PostgresConnection,
        routeID: String,
        level: RollupLevel,
        from: Date,
        to: Date?,
        logger: Logger
    ) async throws -> [RouteMinuteRollup] {
        let p = level.tablePrefix
        let start = StoredTimestamp.format(level.start(of: from))
        let end = to.map(StoredTimestamp.format) ?? "9999-12-31T23:59:59.999Z"
        var byKey: [RouteMinuteRollup.Key: RouteMinuteRollup] = [:]
        func key(_ minute: String, _ instance: String) -> RouteMinuteRollup.Key {
            RouteMinuteRollup.Key(routeID: routeID, minute: StoredTimestamp.parse(minute) ?? from, instanceID: instance)
        }
        for row in try await fetch(
            connection,
            """
            SELECT minute, instance_id, matches, mismatches, status_mismatches, header_mismatches, body_mismatches, legacy_served,
                service_served, service_errors, dropped
            FROM \(unescaped: p)rollups WHERE route_id = \(routeID) AND minute >= \(start) AND minute < \(end)
            """,
            as: (String, String, Int, Int, Int, Int, Int, Int, Int, Int, Int).self,
            logger: logger,
            { ($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10) }
        ) {
            var rollup = RouteMinuteRollup(key: key(row.0, row.1))
            rollup.matches = row.2
            rollup.mismatches = row.3
            rollup.statusMismatches = row.4
            rollup.headerMismatches = row.5
            rollup.bodyMismatches = row.6
            rollup.legacyServed = row.7
            rollup.serviceServed = row.8
            rollup.serviceErrors = row.9
            rollup.dropped = row.10
            byKey[rollup.key] = rollup
        }
        for (minute, instance, outcome, reason, count) in try await fetch(
            connection,
            """
            SELECT minute, instance_id, outcome, reason, count FROM \(unescaped: p)rollup_reasons
            WHERE route_id = \(routeID) AND minute >= \(start) AND minute < \(end)
            """,
            as: (String, String, String, String, Int).self,
            logger: logger,
            { ($0, $1, $2, $3, $4) }
        ) {
            let key = key(minute, instance)
            if outcome == "skipped" {
                byKey[key, default: RouteMinuteRollup(key: key)].skipped[reason, default: 0] += count
            } else {
                byKey[key, default: RouteMinuteRollup(key: key)].uncomparable[reason, default: 0] += count
            }
        }
        for (minute, instance, pointer, kind, count, first, last) in try await fetch(
            connection,
            """
            SELECT minute, instance_id, pointer, kind, count, first_seen, last_seen FROM \(unescaped: p)rollup_pointers
            WHERE route_id = \(routeID) AND minute >= \(start) AND minute < \(end)
            """,
            as: (String, String, String, String, Int, String, String).self,
            logger: logger,
            { ($0, $1, $2, $3, $4, $5, $6) }
        ) {
            guard let kind = DifferenceKind(rawValue: kind) else { continue }
            let key = key(minute, instance)
            let tally = RouteMinuteRollup.PointerTally(
                count: count,
                firstSeen: StoredTimestamp.parse(first) ?? key.minute,
                lastSeen: StoredTimestamp.parse(last) ?? key.minute
            )
            byKey[key, default: RouteMinuteRollup(key: key)].pointers[.init(pointer: pointer, kind: kind)] = tally
        }
        for (minute, instance, text, count) in try await fetch(
            connection,
            """
            SELECT minute, instance_id, signature, count FROM \(unescaped: p)rollup_signatures
            WHERE route_id = \(routeID) AND minute >= \(start) AND minute < \(end)
            """,
            as: (String, String, String, Int).self,
            logger: logger,
            { ($0, $1, $2, $3) }
        ) {
            guard let signature = MismatchSignature(canonicalText: text) else {
                throw RollupStorageError.unreadableSignature(routeID: routeID, text: text)
            }
            let key = key(minute, instance)
            byKey[key, default: RouteMinuteRollup(key: key)].signatures[signature, default: 0] += count
        }
        for (minute, instance, primary, candidate, primaryBlob, candidateBlob) in try await fetch(
            connection,
            """
            SELECT minute, instance_id, primary_upstream, candidate_upstream, primary_histogram, candidate_histogram
            FROM \(unescaped: p)rollup_latencies WHERE route_id = \(routeID) AND minute >= \(start) AND minute < \(end)
            """,
            as: (String, String, String, String, ByteBuffer, ByteBuffer).self,
            logger: logger,
            { ($0, $1, $2, $3, $4, $5) }
        ) {
            var latency = RouteMinuteRollup.PairLatency()
            latency.primary = try LatencyDistribution(serialized: primaryBlob.readableBytesView)
            latency.candidate = try LatencyDistribution(serialized: candidateBlob.readableBytesView)
            let key = key(minute, instance)
            byKey[key, default: RouteMinuteRollup(key: key)].latency[.init(primary: primary, candidate: candidate)] = latency
        }
        return byKey.values.sorted { ($0.key.minute, $0.key.instanceID) < ($1.key.minute, $1.key.instanceID) }
    }

    /// A route's rollups for the window from `since` to now, each stretch from the level
    /// ``RollupReadPlan`` picks, all from one snapshot.
    public func windowRollups(routeID: String, since: Date, bucketSeconds: Int?) async throws -> [RouteMinuteRollup] {
        try await snapshot { [logger] connection in
            let minutesKept = try await Self.fact(connection, "minute_rollups_retained_from", logger: logger)
            var result: [RouteMinuteRollup] = []
            for part in RollupReadPlan(since: since, minutesKeptFrom: minutesKept, bucketSeconds: bucketSeconds).parts {
                result += try await Self.rollups(connection, routeID: routeID, level: part.level, from: part.from, to: part.to, logger: logger)
            }
            return result
        }
    }

    /// The read plan for a window from `since`, given what minute retention still keeps.
    func plan(since: Date, bucketSeconds: Int?) async throws -> RollupReadPlan {
        RollupReadPlan(since: since, minutesKeptFrom: try await fact("minute_rollups_retained_from"), bucketSeconds: bucketSeconds)
    }

    /// A time kept in `store_facts`.
    func fact(_ name: String) async throws -> Date? {
        try await bounded { [client, logger] in
            try await client.withConnection { connection in try await Self.fact(connection, name, logger: logger) }
        }
    }

    static func fact(_ connection: PostgresConnection, _ name: String, logger: Logger) async throws -> Date? {
        try await fetch(connection, "SELECT value FROM store_facts WHERE name = \(name)", as: (String.self), logger: logger) { $0 }
            .first.flatMap(StoredTimestamp.parse)
    }

    /// A plan part's bounds as the stored text compares them; no end is the far future.
    static func bounds(_ part: RollupReadPlan.Part) -> (from: String, to: String) {
        (StoredTimestamp.format(part.from), part.to.map(StoredTimestamp.format) ?? "9999-12-31T23:59:59.999Z")
    }

    /// Comparisons counted in the rollups, of one route or of all (the hours hold every
    /// minute's counts, and are kept longer).
    public func comparisonsCounted(route: String? = nil) async throws -> Int {
        try await read(
            """
            SELECT (SELECT COALESCE(SUM(matches + mismatches), 0) FROM hour_rollups WHERE \(route)::TEXT IS NULL OR route_id = \(route))::BIGINT
                + (SELECT COALESCE(SUM(count), 0) FROM hour_rollup_reasons WHERE \(route)::TEXT IS NULL OR route_id = \(route))::BIGINT
            """,
            as: (Int.self)
        ) { $0 }.first ?? 0
    }

    // MARK: Retention and coverage

    /// Deletes both levels' rollups before `cutoff`'s hour, and records that hour as
    /// `rollups_retained_from`. Returns the rollup rows deleted, minutes' and hours'. Minutes go
    /// as ``pruneMinuteRollups(before:)`` says; hours by DELETE.
    public func pruneRollups(before cutoff: Date) async throws -> Int {
        try await pruneRollups(levels: RollupLevel.allCases, before: RollupLevel.hour.start(of: cutoff), fact: "rollups_retained_from")
    }

    /// Deletes minute rollups before `cutoff`'s hour, and records that hour as
    /// `minute_rollups_retained_from`. Returns the minute rollup rows deleted.
    ///
    /// The minute tables are partitioned by UTC day (``MinuteRollupPartitions``): the days that
    /// end at or before the cutoff are dropped whole, their rows counted exactly first (a
    /// `COUNT(*)` of the day's `rollups` partition); only the boundary day's earlier hours and
    /// the DEFAULT partition's rows are deleted row by row. Each run first makes the coming days'
    /// partitions (``keepMinutePartitions(now:)``).
    public func pruneMinuteRollups(before cutoff: Date) async throws -> Int {
        try await pruneRollups(levels: [.minute], before: RollupLevel.hour.start(of: cutoff), fact: "minute_rollups_retained_from")
    }

    private func pruneRollups(levels: [RollupLevel], before hour: Date, fact: String) async throws -> Int {
        let text = StoredTimestamp.format(hour)
        var droppable: [MinuteRollupPartitions.Day] = []
        if levels.contains(.minute) {
            await keepMinutePartitions(now: Date())
            droppable = try await bounded { [client, logger] in
                try await client.withConnection { connection in try await Self.minutePartitions(connection, logger: logger) }
            }.droppable(before: hour)
        }
        return try await transaction { [droppable] connection in
            var deleted = 0
            if !droppable.isEmpty {
                // Dropping a partition locks its table whole: taken only on the runs that drop
                // something (about one a day), in the writers' order, and the same transaction's
                // deletes below are the boundary day's few hours.
                try await Self.lockForPartitionChanges(connection, logger: self.logger)
                let partitions = try await Self.minutePartitions(connection, logger: self.logger)
                let days = partitions.droppable(before: hour)
                for day in days {
                    let name = MinuteRollupPartitions.name(of: "rollups", day: day)
                    if partitions.existing["rollups"]?.contains(day) == true {
                        deleted +=
                            try await Self.fetch(
                                connection,
                                "SELECT COUNT(*) FROM \(unescaped: name)",
                                as: (Int.self),
                                logger: self.logger
                            ) { $0 }.first ?? 0
                    }
                    for table in MinuteRollupPartitions.tables where partitions.existing[table]?.contains(day) == true {
                        try await connection.query(
                            "DROP TABLE IF EXISTS \(unescaped: MinuteRollupPartitions.name(of: table, day: day))",
                            logger: self.logger
                        )
                    }
                }
                if !days.isEmpty {
                    self.logger.info(
                        "retention dropped minute rollup partitions",
                        metadata: ["days": "\(days.map(\.description).joined(separator: ", "))", "rows": "\(deleted)"]
                    )
                }
            }
            for level in levels {
                // Route by route, so each delete is a range of the primary key (route_id, minute,
                // ...); the route ids come from one index seek per route (a loose index scan).
                // For minutes, PostgreSQL prunes the partitions the range can't reach: the
                // delete reads the boundary day's partition and the DEFAULT one. Hours (60 times
                // fewer rows) are not partitioned, and are deleted.
                let p = level.tablePrefix
                for table in ["rollup_reasons", "rollup_pointers", "rollup_signatures", "rollup_latencies", "rollups"] {
                    let rows = try await connection.query(
                        """
                        WITH RECURSIVE ids(id) AS (
                            SELECT MIN(route_id) FROM \(unescaped: p)rollups
                            UNION ALL SELECT (SELECT MIN(route_id) FROM \(unescaped: p)rollups WHERE route_id > ids.id) FROM ids WHERE ids.id IS NOT NULL),
                        gone AS (DELETE FROM \(unescaped: p + table) WHERE route_id IN (SELECT id FROM ids WHERE id IS NOT NULL)
                            AND minute < \(text) RETURNING 1)
                        SELECT COUNT(*) FROM gone
                        """,
                        logger: self.logger
                    )
                    for try await count in rows.decode(Int.self) where table == "rollups" { deleted += count }
                }
            }
            try await connection.query(
                """
                INSERT INTO store_facts (name, value) VALUES (\(fact), \(text))
                ON CONFLICT (name) DO UPDATE SET value = GREATEST(store_facts.value, excluded.value)
                """,
                logger: self.logger
            )
            return deleted
        }
    }

    // MARK: Minute partitions

    /// The advisory lock partition changes hold for their transaction, so two instances'
    /// upkeep and retention take turns (migrations hold ``PostgresMigrationRunner/lockKey``).
    static let partitionLockKey: Int64 = 0x5374_7261_6E67_6C02  // "Strangl" and 2

    /// Makes today's and the next days' minute partitions (``MinuteRollupPartitions/missing(now:)``),
    /// at open and at every retention run. A failure is logged, not thrown: writes for a day
    /// without its partition go to the DEFAULT partition, and the next run moves them.
    func keepMinutePartitions(now: Date) async {
        do {
            let created = try await bounded { [client, logger] in
                try await Self.createMinutePartitions(client, now: now, logger: logger)
            }
            if !created.isEmpty { logger.info("created minute rollup partitions", metadata: ["partitions": "\(created.joined(separator: ", "))"]) }
        } catch {
            logger.warning(
                "could not create the minute rollup partitions; writes go to the DEFAULT partition until the next try",
                metadata: ["error": "\(error)"]
            )
        }
    }

    /// Creates the missing partitions and returns their names. The catalog is read first
    /// without locks; only when something is missing does a transaction take the locks and read
    /// it again (another instance may have made them meanwhile). Rows the DEFAULT partition
    /// holds for a new day, which PostgreSQL would refuse the partition for, move into it in
    /// the same transaction.
    static func createMinutePartitions(_ client: PostgresClient, now: Date, logger: Logger) async throws -> [String] {
        let planned = try await client.withConnection { connection in try await minutePartitions(connection, logger: logger) }
        guard !planned.missing(now: now).isEmpty else { return [] }
        return try await client.withTransaction(logger: logger) { connection in
            try await lockForPartitionChanges(connection, logger: logger)
            var created: [String] = []
            for (table, day) in try await minutePartitions(connection, logger: logger).missing(now: now) {
                let (from, to) = day.bounds
                let name = MinuteRollupPartitions.name(of: table, day: day)
                let fallback = MinuteRollupPartitions.defaultName(of: table)
                let create: PostgresQuery = """
                    CREATE TABLE IF NOT EXISTS \(unescaped: name) PARTITION OF \(unescaped: table)
                    FOR VALUES FROM ('\(unescaped: from)') TO ('\(unescaped: to)')
                    """
                let held =
                    try await fetch(
                        connection,
                        "SELECT EXISTS (SELECT 1 FROM \(unescaped: fallback) WHERE minute >= \(from) AND minute < \(to))",
                        as: (Bool.self),
                        logger: logger
                    ) { $0 }.first ?? false
                if held {
                    try await connection.query(
                        "CREATE TEMPORARY TABLE strangler_moved_rows (LIKE \(unescaped: table)) ON COMMIT DROP",
                        logger: logger
                    )
                    try await connection.query(
                        """
                        WITH moved AS (DELETE FROM \(unescaped: fallback) WHERE minute >= \(from) AND minute < \(to) RETURNING *)
                        INSERT INTO strangler_moved_rows SELECT * FROM moved
                        """,
                        logger: logger
                    )
                    try await connection.query(create, logger: logger)
                    let moved =
                        try await fetch(
                            connection,
                            "WITH back AS (INSERT INTO \(unescaped: table) SELECT * FROM strangler_moved_rows RETURNING 1) SELECT COUNT(*) FROM back",
                            as: (Int.self),
                            logger: logger
                        ) { $0 }.first ?? 0
                    try await connection.query("DROP TABLE strangler_moved_rows", logger: logger)
                    logger.notice(
                        "moved rows from the DEFAULT partition into their new day partition",
                        metadata: ["partition": "\(name)", "rows": "\(moved)"]
                    )
                } else {
                    try await connection.query(create, logger: logger)
                }
                created.append(name)
            }
            return created
        }
    }

    /// Takes what partition changes need, in the transaction of `connection`: the store's
    /// partition advisory lock, then the partitioned tables themselves in the order writers
    /// lock them (creating or dropping a partition locks its table whole).
    ///
    /// The advisory lock only queues partition makers (instances starting together), so it is
    /// waited for up to 60 seconds. The tables are waited for at most two seconds: writers
    /// queue behind a waiting table lock, and the change can wait for the next run instead.
    static func lockForPartitionChanges(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query("SET LOCAL lock_timeout = '60s'", logger: logger)
        // Read to its end: the lock's wait, and a timeout, come with the row, not before it.
        for try await _ in try await connection.query("SELECT pg_advisory_xact_lock(\(partitionLockKey))", logger: logger) {}
        try await connection.query("SET LOCAL lock_timeout = '2s'", logger: logger)
        try await connection.query(
            "LOCK TABLE \(unescaped: MinuteRollupPartitions.tables.joined(separator: ", ")) IN ACCESS EXCLUSIVE MODE",
            logger: logger
        )
    }

    /// The minute tables' partitions as the catalog lists them now; no entry for a table that
    /// is not partitioned.
    static func minutePartitions(_ connection: PostgresConnection, logger: Logger) async throws -> MinuteRollupPartitions {
        var children: [String: [String]] = [:]
        for (parent, child) in try await fetch(
            connection,
            """
            SELECT p.relname::TEXT, c.relname::TEXT FROM pg_class p
                LEFT JOIN pg_inherits i ON i.inhparent = p.oid LEFT JOIN pg_class c ON c.oid = i.inhrelid
            WHERE p.relkind = 'p' AND p.oid IN (SELECT to_regclass(t)::OID FROM UNNEST(\(MinuteRollupPartitions.tables)) AS t)
            """,
            as: (String, String?).self,
            logger: logger,
            { ($0, $1) }
        ) {
            children[parent, default: []] += child.map { [$0] } ?? []
        }
        return MinuteRollupPartitions(children: children)
    }

    /// How much of the window the route's evidence covers (``EvidenceCoverage``).
    public func coverage(routeID: String, from: Date, to: Date) async throws -> EvidenceCoverage {
        let minutesFrom = try await fact("minute_rollups_retained_from")
        let split = max(RollupLevel.minute.start(of: from), minutesFrom ?? from)
        func dropped(_ level: RollupLevel, _ start: Date, _ end: Date) async throws -> [Date] {
            guard start < end else { return [] }
            return try await read(
                """
                SELECT DISTINCT minute FROM \(unescaped: level.tablePrefix)rollups
                WHERE route_id = \(routeID) AND minute >= \(StoredTimestamp.format(level.start(of: start))) AND minute < \(StoredTimestamp.format(end))
                    AND dropped > 0
                """,
                as: (String.self)
            ) { $0 }.compactMap(StoredTimestamp.parse)
        }
        return EvidenceCoverage(
            from: from,
            to: to,
            firstCompared: try await firstCompared(routeID: routeID),
            retainedFrom: try await fact("rollups_retained_from"),
            droppedMinutes: try await dropped(.minute, split, to),
            droppedHours: try await dropped(.hour, from, min(split, to))
        )
    }

    /// The oldest hour retention still keeps rollups for; nil when none was ever pruned.
    public func rollupsRetainedFrom() async throws -> Date? {
        try await fact("rollups_retained_from")
    }

    /// The oldest hour retention still keeps minute rollups for; nil when none was ever pruned.
    public func minuteRollupsRetainedFrom() async throws -> Date? {
        try await fact("minute_rollups_retained_from")
    }

    /// When a route was first compared, kept even after retention removed that minute.
    public func firstCompared(routeID: String) async throws -> Date? {
        try await read("SELECT first_compared FROM route_first_compared WHERE route_id = \(routeID)", as: (String.self)) { $0 }
            .first.flatMap(StoredTimestamp.parse)
    }
}
