import Foundation
import GRDB
import StranglerCore

/// Rollups in SQLite: written by adding to what a minute and its hour already hold, read back
/// per route and window. Five tables hold one level of rollups (migrations/0005_rollups.sql for
/// minutes, 0006_hour_rollups.sql for hours): the counts, the reasons, the pointers, the
/// mismatch signatures and the latencies.
extension SQLiteDiffStore {
    /// Adds one rollup to the minute it names and to that minute's hour, inside the caller's
    /// transaction: counts add, first and last sightings widen, and latency histograms merge.
    /// Writing the same open minute again with only what arrived since (as the recorder does
    /// every few seconds) is therefore exact, and the two levels always agree.
    static func add(_ rollup: RouteMinuteRollup, _ db: Database) throws {
        for level in RollupLevel.allCases { try add(rollup, at: level, db) }
        // Dropped comparisons were comparisons too: the route's evidence starts with them, so a
        // window's coverage shows their minutes as gaps.
        if rollup.samples > 0 || !rollup.uncomparable.isEmpty || !rollup.skipped.isEmpty || rollup.dropped > 0 {
            try db.cachedStatement(
                sql: """
                    INSERT INTO route_first_compared (route_id, first_compared) VALUES (?, ?)
                    ON CONFLICT (route_id) DO UPDATE SET first_compared = min(first_compared, excluded.first_compared)
                    """
            ).execute(arguments: [rollup.key.routeID, format(rollup.key.minute)])
        }
    }

    private static func add(_ rollup: RouteMinuteRollup, at level: RollupLevel, _ db: Database) throws {
        let p = level.tablePrefix
        let key: [any DatabaseValueConvertible] = [rollup.key.routeID, format(level.start(of: rollup.key.minute)), rollup.key.instanceID]
        try db.cachedStatement(
            sql: """
                INSERT INTO \(p)rollups (route_id, minute, instance_id, matches, mismatches, status_mismatches, header_mismatches,
                    body_mismatches, legacy_served, service_served, service_errors, dropped)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (route_id, minute, instance_id) DO UPDATE SET
                    matches = matches + excluded.matches, mismatches = mismatches + excluded.mismatches,
                    status_mismatches = status_mismatches + excluded.status_mismatches,
                    header_mismatches = header_mismatches + excluded.header_mismatches,
                    body_mismatches = body_mismatches + excluded.body_mismatches,
                    legacy_served = legacy_served + excluded.legacy_served, service_served = service_served + excluded.service_served,
                    service_errors = service_errors + excluded.service_errors, dropped = dropped + excluded.dropped
                """
        ).execute(
            arguments: StatementArguments(
                key + [
                    rollup.matches, rollup.mismatches, rollup.statusMismatches, rollup.headerMismatches, rollup.bodyMismatches,
                    rollup.legacyServed, rollup.serviceServed, rollup.serviceErrors, rollup.dropped,
                ]
            )
        )
        let reason = try db.cachedStatement(
            sql: """
                INSERT INTO \(p)rollup_reasons (route_id, minute, instance_id, outcome, reason, count) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (route_id, minute, instance_id, outcome, reason) DO UPDATE SET count = count + excluded.count
                """
        )
        for (outcome, counts) in [("uncomparable", rollup.uncomparable), ("skipped", rollup.skipped)] {
            for (text, count) in counts { try reason.execute(arguments: StatementArguments(key + [outcome, text, count])) }
        }
        let pointer = try db.cachedStatement(
            sql: """
                INSERT INTO \(p)rollup_pointers (route_id, minute, instance_id, pointer, kind, count, first_seen, last_seen)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (route_id, minute, instance_id, pointer, kind) DO UPDATE SET count = count + excluded.count,
                    first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)
                """
        )
        for (where_, tally) in rollup.pointers {
            try pointer.execute(
                arguments: StatementArguments(
                    key + [where_.pointer, where_.kind.rawValue, tally.count, format(tally.firstSeen), format(tally.lastSeen)]
                )
            )
        }
        let signature = try db.cachedStatement(
            sql: """
                INSERT INTO \(p)rollup_signatures (route_id, minute, instance_id, signature, count) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (route_id, minute, instance_id, signature) DO UPDATE SET count = count + excluded.count
                """
        )
        for (what, count) in rollup.signatures {
            try signature.execute(arguments: StatementArguments(key + [what.canonicalText, count]))
        }
        // Histograms merge in Swift: the period's stored pair is read, merged and written back
        // (one writer per store file, inside the write transaction).
        for (pair, latency) in rollup.latency {
            let pairKey = key + [pair.primary, pair.candidate]
            var merged = latency
            if let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT primary_histogram, candidate_histogram FROM \(p)rollup_latencies
                        WHERE route_id = ? AND minute = ? AND instance_id = ? AND primary_upstream = ? AND candidate_upstream = ?
                        """
                ),
                arguments: StatementArguments(pairKey)
            ) {
                // A stored histogram that can't be read (damaged, or a format from a newer
                // version) is replaced by the new one rather than failing every later write:
                // that period loses its earlier latencies, and its counts stay exact.
                if let stored = try? LatencyDistribution(serialized: row["primary_histogram"] as Data) { merged.primary.merge(stored) }
                if let stored = try? LatencyDistribution(serialized: row["candidate_histogram"] as Data) { merged.candidate.merge(stored) }
            }
            try db.cachedStatement(
                sql: """
                    INSERT OR REPLACE INTO \(p)rollup_latencies (route_id, minute, instance_id, primary_upstream, candidate_upstream,
                        primary_histogram, candidate_histogram) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: StatementArguments(pairKey + [Data(merged.primary.serialized()), Data(merged.candidate.serialized())]))
        }
    }

    /// A route's rollups at one level for the periods from `from`'s period up to (not
    /// including) `to`, every instance's, oldest first. An hour's rollup carries its first
    /// minute as its key's `minute`.
    public func rollups(routeID: String, level: RollupLevel = .minute, from: Date, to: Date? = nil) async throws -> [RouteMinuteRollup] {
        try await pool.read { db in try Self.rollups(db, routeID: routeID, level: level, from: from, to: to) }
    }

    /// A route's rollups for the window from `since` to now, each stretch from the level
    /// ``RollupReadPlan`` picks: what every reader of evidence sums.
    /// - Parameter bucketSeconds: the finest buckets the caller draws; nil for one bucket.
    public func windowRollups(routeID: String, since: Date, bucketSeconds: Int?) async throws -> [RouteMinuteRollup] {
        try await pool.read { db in
            try Self.plan(db, since: since, bucketSeconds: bucketSeconds).parts.flatMap { part in
                try Self.rollups(db, routeID: routeID, level: part.level, from: part.from, to: part.to)
            }
        }
    }

    /// The read plan for a window from `since`, given what minute retention still keeps.
    static func plan(_ db: Database, since: Date, bucketSeconds: Int?) throws -> RollupReadPlan {
        RollupReadPlan(since: since, minutesKeptFrom: try fact(db, "minute_rollups_retained_from"), bucketSeconds: bucketSeconds)
    }

    /// A time kept in `store_facts`.
    static func fact(_ db: Database, _ name: String) throws -> Date? {
        try String.fetchOne(db, sql: "SELECT value FROM store_facts WHERE name = ?", arguments: [name]).flatMap { parse($0) }
    }

    /// A plan part's bounds as the stored text compares them; no end is the far future.
    static func bounds(_ part: RollupReadPlan.Part) -> (from: String, to: String) {
        (format(part.from), part.to.map(format) ?? "9999-12-31T23:59:59.999Z")
    }

    static func rollups(_ db: Database, routeID: String, level: RollupLevel, from: Date, to: Date?) throws -> [RouteMinuteRollup] {
        let p = level.tablePrefix
        let start = format(level.start(of: from))
        // No end: the far future, in the same fixed-width text.
        let end = to.map(format) ?? "9999-12-31T23:59:59.999Z"
        let range: StatementArguments = [routeID, start, end]
        var byKey: [RouteMinuteRollup.Key: RouteMinuteRollup] = [:]
        func key(_ row: Row) -> RouteMinuteRollup.Key {
            RouteMinuteRollup.Key(routeID: routeID, minute: parse(row["minute"]) ?? from, instanceID: row["instance_id"])
        }
        for row in try Row.fetchAll(
            db,
            sql: "SELECT * FROM \(p)rollups WHERE route_id = ? AND minute >= ? AND minute < ?",
            arguments: range
        ) {
            var rollup = RouteMinuteRollup(key: key(row))
            rollup.matches = row["matches"]
            rollup.mismatches = row["mismatches"]
            rollup.statusMismatches = row["status_mismatches"]
            rollup.headerMismatches = row["header_mismatches"]
            rollup.bodyMismatches = row["body_mismatches"]
            rollup.legacyServed = row["legacy_served"]
            rollup.serviceServed = row["service_served"]
            rollup.serviceErrors = row["service_errors"]
            rollup.dropped = row["dropped"]
            byKey[rollup.key] = rollup
        }
        for row in try Row.fetchAll(
            db,
            sql: "SELECT minute, instance_id, outcome, reason, count FROM \(p)rollup_reasons WHERE route_id = ? AND minute >= ? AND minute < ?",
            arguments: range
        ) {
            let key = key(row)
            let outcome: String = row["outcome"]
            if outcome == "skipped" {
                byKey[key, default: RouteMinuteRollup(key: key)].skipped[row["reason"], default: 0] += row["count"] as Int
            } else {
                byKey[key, default: RouteMinuteRollup(key: key)].uncomparable[row["reason"], default: 0] += row["count"] as Int
            }
        }
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT minute, instance_id, pointer, kind, count, first_seen, last_seen FROM \(p)rollup_pointers
                WHERE route_id = ? AND minute >= ? AND minute < ?
                """,
            arguments: range
        ) {
            guard let kind = DifferenceKind(rawValue: row["kind"]) else { continue }
            let key = key(row)
            let tally = RouteMinuteRollup.PointerTally(
                count: row["count"],
                firstSeen: parse(row["first_seen"]) ?? key.minute,
                lastSeen: parse(row["last_seen"]) ?? key.minute
            )
            byKey[key, default: RouteMinuteRollup(key: key)].pointers[.init(pointer: row["pointer"], kind: kind)] = tally
        }
        for row in try Row.fetchAll(
            db,
            sql: "SELECT minute, instance_id, signature, count FROM \(p)rollup_signatures WHERE route_id = ? AND minute >= ? AND minute < ?",
            arguments: range
        ) {
            guard let signature = MismatchSignature(canonicalText: row["signature"]) else {
                throw RollupStorageError.unreadableSignature(routeID: routeID, text: row["signature"])
            }
            let key = key(row)
            byKey[key, default: RouteMinuteRollup(key: key)].signatures[signature, default: 0] += row["count"] as Int
        }
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT minute, instance_id, primary_upstream, candidate_upstream, primary_histogram, candidate_histogram
                FROM \(p)rollup_latencies WHERE route_id = ? AND minute >= ? AND minute < ?
                """,
            arguments: range
        ) {
            let key = key(row)
            var latency = RouteMinuteRollup.PairLatency()
            latency.primary = try LatencyDistribution(serialized: row["primary_histogram"] as Data)
            latency.candidate = try LatencyDistribution(serialized: row["candidate_histogram"] as Data)
            let pair = RouteMinuteRollup.UpstreamPair(primary: row["primary_upstream"], candidate: row["candidate_upstream"])
            byKey[key, default: RouteMinuteRollup(key: key)].latency[pair] = latency
        }
        return byKey.values.sorted {
            ($0.key.minute, $0.key.instanceID) < ($1.key.minute, $1.key.instanceID)
        }
    }

    /// Comparisons counted in the rollups, of one route or of all: every comparison the
    /// recorder took, whether or not its row was kept as an example.
    public func comparisonsCounted(route: String? = nil) async throws -> Int {
        try await pool.read { db in
            let filter = route == nil ? "" : " WHERE route_id = ?"
            let arguments: StatementArguments = route.map { [$0] } ?? []
            // The hours: they hold every minute's counts, and are kept longer.
            let compared = try Int.fetchOne(db, sql: "SELECT SUM(matches + mismatches) FROM hour_rollups" + filter, arguments: arguments) ?? 0
            let other = try Int.fetchOne(db, sql: "SELECT SUM(count) FROM hour_rollup_reasons" + filter, arguments: arguments) ?? 0
            return compared + other
        }
    }

    /// Deletes both levels' rollups before `cutoff`'s hour, and records that hour as
    /// `rollups_retained_from` (it only moves forward): hours are the unit evidence is kept in
    /// for long. Returns the hour rollup rows deleted.
    public func pruneRollups(before cutoff: Date) async throws -> Int {
        let hour = RollupLevel.hour.start(of: cutoff)
        return try await pool.write { db in
            try Self.pruneRollups(db, levels: RollupLevel.allCases, before: hour, fact: "rollups_retained_from")
        }
    }

    /// Deletes minute rollups before `cutoff`'s hour, and records that hour as
    /// `minute_rollups_retained_from`: older windows read whole hours from then on
    /// (``RollupReadPlan``). Returns the minute rollup rows deleted.
    public func pruneMinuteRollups(before cutoff: Date) async throws -> Int {
        let hour = RollupLevel.hour.start(of: cutoff)
        return try await pool.write { db in
            try Self.pruneRollups(db, levels: [.minute], before: hour, fact: "minute_rollups_retained_from")
        }
    }

    private static func pruneRollups(_ db: Database, levels: [RollupLevel], before hour: Date, fact: String) throws -> Int {
        let text = format(hour)
        var deleted = 0
        for level in levels {
            // Route by route, so each delete is a range of the primary key (route_id, minute, ...)
            // rather than a scan of the whole table. The route ids come from the level's counts
            // table (every rollup writes a row there, traffic of routes never compared too), one
            // index seek per route rather than a scan for DISTINCT.
            let routes = """
                WITH RECURSIVE ids(id) AS (
                    SELECT MIN(route_id) FROM \(level.tablePrefix)rollups
                    UNION ALL SELECT (SELECT MIN(route_id) FROM \(level.tablePrefix)rollups WHERE route_id > ids.id) FROM ids WHERE ids.id IS NOT NULL)
                SELECT id FROM ids WHERE id IS NOT NULL
                """
            for table in ["rollup_reasons", "rollup_pointers", "rollup_signatures", "rollup_latencies", "rollups"] {
                try db.execute(
                    sql: "DELETE FROM \(level.tablePrefix + table) WHERE route_id IN (\(routes)) AND minute < ?",
                    arguments: [text]
                )
                if table == "rollups" { deleted += db.changesCount }
            }
        }
        try db.execute(
            sql: "INSERT INTO store_facts (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            arguments: [fact, text]
        )
        return deleted
    }

    /// How much of the window the route's evidence covers (``EvidenceCoverage``). Drops are
    /// found per minute where minutes are kept, and per hour before that.
    public func coverage(routeID: String, from: Date, to: Date) async throws -> EvidenceCoverage {
        try await pool.read { db in
            let minutesFrom = try Self.fact(db, "minute_rollups_retained_from")
            let split = max(RollupLevel.minute.start(of: from), minutesFrom ?? from)
            func dropped(_ level: RollupLevel, _ start: Date, _ end: Date) throws -> [Date] {
                guard start < end else { return [] }
                return try String.fetchAll(
                    db,
                    sql: "SELECT DISTINCT minute FROM \(level.tablePrefix)rollups WHERE route_id = ? AND minute >= ? AND minute < ? AND dropped > 0",
                    arguments: [routeID, Self.format(level.start(of: start)), Self.format(end)]
                ).compactMap { Self.parse($0) }
            }
            return EvidenceCoverage(
                from: from,
                to: to,
                firstCompared: try Self.firstCompared(db, routeID: routeID),
                retainedFrom: try Self.fact(db, "rollups_retained_from"),
                droppedMinutes: try dropped(.minute, split, to),
                droppedHours: try dropped(.hour, from, min(split, to))
            )
        }
    }

    /// The oldest hour retention still keeps rollups for; nil when none was ever pruned.
    public func rollupsRetainedFrom() async throws -> Date? {
        try await pool.read { db in try Self.fact(db, "rollups_retained_from") }
    }

    /// The oldest hour retention still keeps minute rollups for; nil when none was ever pruned.
    public func minuteRollupsRetainedFrom() async throws -> Date? {
        try await pool.read { db in try Self.fact(db, "minute_rollups_retained_from") }
    }

    /// When a route was first compared, kept even after retention removed that minute.
    public func firstCompared(routeID: String) async throws -> Date? {
        try await pool.read { db in try Self.firstCompared(db, routeID: routeID) }
    }

    static func firstCompared(_ db: Database, routeID: String) throws -> Date? {
        try String.fetchOne(db, sql: "SELECT first_compared FROM route_first_compared WHERE route_id = ?", arguments: [routeID])
            .flatMap { parse($0) }
    }
}

/// A stored rollup that can't be read back.
public enum RollupStorageError: Error, CustomStringConvertible {
    /// A mismatch signature's text is not one the store writes.
    case unreadableSignature(routeID: String, text: String)

    public var description: String {
        switch self {
        case .unreadableSignature(let routeID, let text):
            return "route \(routeID): a stored mismatch signature is unreadable (\(text)); the rollup tables were edited by hand or damaged"
        }
    }
}
