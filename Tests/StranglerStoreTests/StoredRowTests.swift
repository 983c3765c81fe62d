import Foundation
import GRDB
import StranglerCore
import Testing

@testable import StranglerStore

/// The per-comparison insert binds values itself (DirectBinding) and formats timestamps by hand
/// (StoredTimestamp): both must store exactly what GRDB and Foundation would have.
@Suite("Stored comparison rows")
struct StoredRowTests {
    @Test(
        "timestamps match ISO 8601 with milliseconds, and text order is time order (2,000 random dates 1970-2100, edges; a failure names its value)"
    )
    func timestamps() throws {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        var generator = SystemRandomNumberGenerator()
        var seconds: [Double] = [0, 951_782_400, 951_868_799.999, 1_709_164_800.5, 4_102_444_799.999, 1_795_363_200.0004]
        for _ in 0..<2000 { seconds.append(Double.random(in: 0..<4_102_444_800, using: &generator)) }
        var previous = ""
        for value in seconds.sorted() {
            let date = Date(timeIntervalSince1970: value)
            let text = StoredTimestamp.format(date)
            #expect(text == style.format(date), "\(value)")
            #expect(text >= previous)
            #expect(StoredTimestamp.parse(text).map { abs($0.timeIntervalSince1970 - value) < 0.001 } == true)
            #expect(StoredTimestamp.parse(text).map(StoredTimestamp.format) == text, "a stored time reads back as itself: \(text)")
            previous = text
        }
    }

    @Test("every column is stored as given: NULLs, empty and non-ASCII text, numbers")
    func columns() async throws {
        let store = try DiffStoreTests.store()
        var record = ComparisonRecord(
            routeID: "r-ü",
            requestID: "",
            method: "GET",
            path: "/caf\u{e9}?q=1",
            recordedAt: Date(timeIntervalSince1970: 1_795_363_200.25),
            tableVersion: "v9",
            primaryUpstream: "legacy",
            candidateUpstream: "svc",
            primaryStatus: 200,
            candidateStatus: nil,
            primaryMilliseconds: 1.5,
            candidateMilliseconds: nil,
            outcome: .skipped,
            reason: "candidate_timeout"
        )
        record.differences = [Difference(kind: .missing, pointer: "/a", primary: "", candidate: nil)]
        try await store.insertCounted([record])
        let row = try #require(try await store.pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM comparisons") })
        #expect(row["route_id"] as String == "r-ü")
        #expect(row["request_id"] as String == "")
        #expect(row["path"] as String == "/caf\u{e9}?q=1")
        #expect(row["recorded_at"] as String == "2026-11-22T16:00:00.250Z")
        #expect(row["primary_status"] as Int? == 200)
        #expect(row["candidate_status"] as Int? == nil)
        #expect(row["primary_ms"] as Double? == 1.5)
        #expect(row["candidate_ms"] as Double? == nil)
        #expect(row["outcome"] as String == "skipped")
        #expect(row["skip_reason"] as String? == "candidate_timeout")
        #expect(row["difference_count"] as Int == 1)
        #expect(try await store.differences(requestID: "") == record.differences)
    }

    @Test(
        "a batch mixing plain comparisons (stored many rows per statement) with ones that have differences keeps its order, every column, and each difference with its comparison"
    )
    func mixedBatch() async throws {
        let store = try DiffStoreTests.store()
        // Runs of every length up to 100 between comparisons with differences, so each size of
        // multi-row statement and the remainders are used.
        var batch: [ComparisonRecord] = []
        var run = 0
        while batch.count < 600 {
            for _ in 0..<run { batch.append(DiffStoreTests.record("plain-\(batch.count)")) }
            let index = batch.count
            batch.append(
                DiffStoreTests.record(
                    "diff-\(index)",
                    differences: [Difference(kind: .changed, pointer: "/n/\(index)", primary: "1", candidate: "2")]
                )
            )
            run = (run * 7 + 3) % 101
        }
        batch[1].primaryMilliseconds = nil
        batch[2].reason = "note"
        try await store.insertCounted(batch)
        let rows = try await store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT request_id, primary_ms, skip_reason, difference_count FROM comparisons ORDER BY id")
        }
        #expect(rows.map { $0["request_id"] as String } == batch.map(\.requestID))
        #expect(rows.map { $0["difference_count"] as Int } == batch.map(\.differences.count))
        #expect(rows.map { $0["primary_ms"] as Double? } == batch.map(\.primaryMilliseconds))
        #expect(rows.map { $0["skip_reason"] as String? } == batch.map(\.reason))
        for record in batch where !record.differences.isEmpty {
            #expect(try await store.differences(requestID: record.requestID) == record.differences)
        }
    }

    @Test(
        "text bound from the arena survives chunk boundaries: a batch of long, empty and non-ASCII values, many chunks per statement, stored exactly"
    )
    func longTextAcrossChunks() async throws {
        let store = try DiffStoreTests.store()
        // 64 plain comparisons go in one statement: with ~40 KB paths that is about 40 chunks of
        // 64 KiB, and each text must still read back as bound.
        let batch = (0..<130).map { index in
            var record = DiffStoreTests.record(index % 7 == 0 ? "" : "req-\(index)-\u{e9}")
            record.path = "/long/\(index)/" + String(repeating: "\u{1F600}x", count: 8_000 + index)
            return record
        }
        try await store.insertCounted(batch)
        let rows = try await store.pool.read { db in try Row.fetchAll(db, sql: "SELECT request_id, path, route_id FROM comparisons ORDER BY id") }
        #expect(rows.map { $0["request_id"] as String } == batch.map(\.requestID))
        #expect(rows.map { $0["path"] as String } == batch.map(\.path))
        #expect(rows.map { $0["route_id"] as String } == batch.map(\.routeID))
    }

    @Test("the arena keeps every value's bytes until reuse, gives one value longer than a chunk its own chunk, and reuses its chunks afterwards")
    func arena() {
        let arena = BindingArena(chunkSize: 16)
        var kept: [(UnsafeRawBufferPointer, [UInt8])] = []
        for length in [0, 5, 11, 1, 16, 40, 3, 0, 15] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ length) }
            kept.append((bytes.withUnsafeBufferPointer { arena.keep($0) }, bytes))
        }
        for (place, bytes) in kept {
            #expect(Array(place) == bytes)
            #expect(place.baseAddress != nil)
        }
        let chunks = arena.chunkCount
        #expect(chunks >= 4)
        for _ in 0..<10 {
            arena.reuse()
            for (_, bytes) in kept { _ = bytes.withUnsafeBufferPointer { arena.keep($0) } }
        }
        #expect(arena.chunkCount == chunks)
    }

    @Test("a time with no fixed-width form (year 10000 or later) is stored as Foundation writes it, next to one that has")
    func timestampBeyondFixedWidth() async throws {
        let store = try DiffStoreTests.store()
        let far = Date(timeIntervalSince1970: 253_402_300_800.5)  // 10000-01-01T00:00:00.500Z
        let near = Date(timeIntervalSince1970: 1_795_363_200.25)
        try await store.insertCounted([DiffStoreTests.record("far", at: far), DiffStoreTests.record("near", at: near)])
        let stored = try await store.pool.read { db in try String.fetchAll(db, sql: "SELECT recorded_at FROM comparisons ORDER BY id") }
        #expect(stored == [Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(far), "2026-11-22T16:00:00.250Z"])
    }
}
