import Foundation

/// The day partitions of the PostgreSQL minute rollup tables (migration 0004): which exist,
/// which should, and which retention can drop whole. Pure planning, no database: the store reads
/// the partitions' names from the catalog, asks this what to do, and does it.
///
/// Each of ``tables`` is partitioned by range on its `minute` column, the stored text
/// (`2026-12-07T01:23:00.000Z`), whose text order is time order: one partition per UTC day,
/// named `<table>_p20261207`, from that day's first minute up to (not including) the next day's,
/// and a DEFAULT partition `<table>_default` that takes any minute no day partition covers, so a
/// write never fails for want of a partition.
///
/// The hour tables (`hour_*`) are not partitioned: they hold 60 times fewer rows, and their
/// retention stays a DELETE.
struct MinuteRollupPartitions: Sendable, Equatable {
    /// The partitioned tables, in the order the store's writers lock them (``PostgresDiffStore``
    /// writes rollups, then reasons, pointers, signatures, latencies): partition DDL locks them
    /// in the same order, so it waits for a writer or a writer waits for it, never both.
    static let tables = ["rollups", "rollup_reasons", "rollup_pointers", "rollup_signatures", "rollup_latencies"]
    /// Days after today whose partitions upkeep makes ahead of their first write.
    static let daysAhead = 2

    /// A UTC day, as whole days since 1970-01-01.
    struct Day: Hashable, Comparable, Sendable, CustomStringConvertible {
        var number: Int

        init(number: Int) {
            self.number = number
        }

        /// The UTC day `date` falls in.
        init(of date: Date) {
            number = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
        }

        /// The day's first instant.
        var start: Date { Date(timeIntervalSince1970: Double(number) * 86_400) }
        /// The next day's first instant: where the day's partition ends.
        var end: Date { Date(timeIntervalSince1970: Double(number + 1) * 86_400) }
        /// The partition's range as the stored text compares it: `FROM (from) TO (to)`.
        var bounds: (from: String, to: String) { (StoredTimestamp.format(start), StoredTimestamp.format(end)) }
        /// `20261207`: the partition names' suffix.
        var compact: String { String(StoredTimestamp.format(start).prefix(10).filter { $0 != "-" }) }
        var description: String { String(StoredTimestamp.format(start).prefix(10)) }

        static func < (a: Day, b: Day) -> Bool { a.number < b.number }
    }

    /// The day partitions each partitioned table has, by table; a table that is not
    /// partitioned (a database before migration 0004) has no entry, and is left alone.
    var existing: [String: Set<Day>]

    /// Partitions as the catalog lists them: each partitioned table's child tables' names (none
    /// yet: an empty list). Names that are not a day partition of that table (its DEFAULT
    /// partition, anything made by hand) are ignored: never created, never dropped.
    init(children: [String: [String]]) {
        existing = [:]
        for (table, names) in children {
            existing[table] = Set(names.compactMap { Self.day(fromName: $0, in: table) })
        }
    }

    /// `rollups_p20261207`.
    static func name(of table: String, day: Day) -> String { "\(table)_p\(day.compact)" }

    /// `rollups_default`.
    static func defaultName(of table: String) -> String { "\(table)_default" }

    /// The day a partition of `table` named `name` covers; nil if it is not one of its day
    /// partitions.
    static func day(fromName name: String, in table: String) -> Day? {
        let prefix = "\(table)_p"
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard digits.count == 8, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        let text = "\(digits.prefix(4))-\(digits.dropFirst(4).prefix(2))-\(digits.suffix(2))T00:00:00.000Z"
        guard let date = StoredTimestamp.parse(text) else { return nil }
        let day = Day(of: date)
        // A name like _p20261340 parses loosely or not at all: only a name that writes back the
        // same is one of ours.
        return day.compact == digits ? day : nil
    }

    /// Today and the next ``daysAhead`` UTC days.
    static func wanted(now: Date) -> [Day] {
        let today = Day(of: now)
        return (0...daysAhead).map { Day(number: today.number + $0) }
    }

    /// The partitions upkeep creates: the wanted days a table lacks, table by table in
    /// ``tables`` order, days in order.
    func missing(now: Date) -> [(table: String, day: Day)] {
        Self.tables.flatMap { table -> [(table: String, day: Day)] in
            guard let days = existing[table] else { return [] }
            return Self.wanted(now: now).filter { !days.contains($0) }.map { (table, $0) }
        }
    }

    /// The days whose partitions retention drops for a cutoff: those whose whole range ends at
    /// or before it, in any table. What is left before the cutoff (the boundary day's earlier
    /// hours, the DEFAULT partition) is for a DELETE.
    func droppable(before cutoff: Date) -> [Day] {
        existing.values.reduce(into: Set<Day>()) { $0.formUnion($1) }.filter { $0.end <= cutoff }.sorted()
    }
}
