import CompressNIO
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import StranglerCore
import StranglerStore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

@Suite("Comparison worker")
struct ComparisonWorkerTests {
    static func worker() throws -> ComparisonWorker {
        var logger = Logger(label: "test.worker")
        logger.logLevel = .critical
        return ComparisonWorker(recorder: DiffRecorder(store: try makeTestStore("worker"), logger: logger), metrics: ProxyMetrics(), logger: logger)
    }

    static func job(primary: [UInt8], primaryEncoding: String?, candidate: [UInt8]) throws -> ShadowJob {
        let table = try RouteTable.parse(
            Data(
                #"{"upstreams": {"legacy": {"url": "http://127.0.0.1:1"}, "svc": {"url": "http://127.0.0.1:2"}}, "defaultUpstream": "legacy", "routes": [{"id": "r", "path": "/r", "mode": "shadow", "service": "svc"}]}"#
                    .utf8
            )
        )
        var primaryHeaders: [(name: String, value: String)] = [("content-type", "application/json")]
        if let primaryEncoding { primaryHeaders.append(("Content-Encoding", primaryEncoding)) }
        return ShadowJob(
            routeID: table.routes[0].id,
            compare: table.routes[0].compare,
            tableVersion: table.version,
            requestID: "w-1",
            method: "GET",
            uri: "/r",
            primary: .init(upstream: "legacy", status: 200, headers: primaryHeaders, body: ByteBuffer(bytes: primary)),
            candidate: .init(upstream: "svc", status: 200, headers: [("content-type", "application/json")], body: ByteBuffer(bytes: candidate)),
            skipReason: nil
        )
    }

    static func compressed(_ bytes: [UInt8], _ algorithm: CompressionAlgorithm) throws -> [UInt8] {
        var buffer = ByteBuffer(bytes: bytes)
        return Array(try buffer.compress(with: algorithm).readableBytesView)
    }

    @Test("a captured side gives back its headers and body as set, however long a line")
    func capturedSideRoundTrip() {
        let long = String(repeating: "x", count: 70_000)
        var side = ShadowJob.Side(
            upstream: "svc",
            status: 200,
            headers: [("Content-Type", "application/json"), (long, long)],
            body: ByteBuffer(string: "{}")
        )
        #expect(side.headers.map(\.name) == ["Content-Type", long])
        #expect(side.headers.map(\.value) == ["application/json", long])
        #expect(side.body == ByteBuffer(string: "{}"))
        side.body = ByteBuffer(string: "[1]")
        side.headers = [("Content-Encoding", "gzip")]
        #expect(side.headers.map(\.name) == ["Content-Encoding"])
        #expect(side.body == ByteBuffer(string: "[1]"))
        side.dropCapture()
        #expect(side.headers.isEmpty)
        #expect(side.body.readableBytes == 0)
        #expect(side.status == 200)
    }

    @Test("byte-identical answers are told apart from ones that only look alike")
    func identicalAnswers() throws {
        let json = Array(#"{"sku": "SKU-1", "onHand": 4}"#.utf8)
        let same = try Self.job(primary: json, primaryEncoding: nil, candidate: json)
        #expect(same.primary.isIdentical(to: same.candidate))
        // Equal as JSON, not as bytes: for the comparator, not the shortcut.
        let reordered = try Self.job(primary: json, primaryEncoding: nil, candidate: Array(#"{"onHand": 4, "sku": "SKU-1"}"#.utf8))
        #expect(!reordered.primary.isIdentical(to: reordered.candidate))
        var status = same
        status.candidate.status = 201
        #expect(!status.primary.isIdentical(to: status.candidate))
        var header = same
        header.candidate.headers = [("content-type", "text/plain")]
        #expect(!header.primary.isIdentical(to: header.candidate))
        // Encoded bodies are compared decoded, so even identical bytes take the long way.
        var encoded = try Self.job(primary: json, primaryEncoding: "gzip", candidate: json)
        encoded.candidate.headers = encoded.primary.headers
        #expect(!encoded.primary.isIdentical(to: encoded.candidate))
        // A body that came in parts is the same as one that came whole.
        var parts = ShadowJob.Side(upstream: "svc", status: 200, headers: same.primary.headers)
        parts.append(ByteBuffer(bytes: json[..<5]))
        parts.append(ByteBuffer(bytes: json[5...]))
        #expect(same.primary.isIdentical(to: parts))
    }

    @Test("a job marked identical is a match with no differences; the same answers compared in full agree")
    func identicalJob() throws {
        let worker = try Self.worker()
        let json = Array(#"{"sku": "SKU-1", "onHand": 4}"#.utf8)
        let full = worker.record(for: try Self.job(primary: json, primaryEncoding: nil, candidate: json))
        var shortcut = try Self.job(primary: json, primaryEncoding: nil, candidate: json)
        shortcut.identical = true
        shortcut.primary.dropCapture()
        shortcut.candidate.dropCapture()
        let record = worker.record(for: shortcut)
        #expect(full.outcome == .match && full.differences.isEmpty)
        #expect(record.outcome == .match && record.differences.isEmpty && record.reason == nil)
        #expect(record.primaryStatus == 200 && record.candidateStatus == 200)
    }

    @Test("gzip and deflate bodies are decoded before comparison")
    func decodes() throws {
        let worker = try Self.worker()
        let json = Array(#"{"sku": "SKU-1", "onHand": 4}"#.utf8)
        for (encoding, algorithm) in [("gzip", CompressionAlgorithm.gzip()), ("deflate", .zlib())] {
            let same = worker.record(for: try Self.job(primary: try Self.compressed(json, algorithm), primaryEncoding: encoding, candidate: json))
            #expect(same.outcome == .match, "\(encoding): \(same.reason ?? "")")
            let changed = Array(#"{"sku": "SKU-1", "onHand": 5}"#.utf8)
            let differs = worker.record(
                for: try Self.job(primary: try Self.compressed(json, algorithm), primaryEncoding: encoding, candidate: changed)
            )
            #expect(differs.differences.map(\.pointer) == ["/onHand"])
        }
    }

    @Test("graceful shutdown loses nothing: jobs queued in the worker are compared and stored before exit")
    func shutdownLosesNothing() async throws {
        var logger = Logger(label: "test.worker")
        logger.logLevel = .critical
        let store = try makeTestStore("drain")
        // A long flush interval: only the shutdown path can write these.
        let recorder = DiffRecorder(store: store, interval: .seconds(3600), logger: logger)
        let worker = ComparisonWorker(recorder: recorder, metrics: ProxyMetrics(), logger: logger)
        let group = ServiceGroup(services: [recorder, worker], logger: logger)
        let json = Array(#"{"a": 1}"#.utf8)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for index in 0..<500 {
                var job = try Self.job(primary: json, primaryEncoding: nil, candidate: json)
                job.requestID = "drain-\(index)"
                #expect(worker.submit(job))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try await store.comparisonsCounted() == 500)
    }

    @Test("a decompression bomb, a broken stream and an unknown encoding are uncomparable with a reason")
    func hostileEncodings() throws {
        let worker = try Self.worker()
        let bomb = try Self.compressed([UInt8](repeating: 0x20, count: 20 * 1024 * 1024), .gzip())
        let exploded = worker.record(for: try Self.job(primary: bomb, primaryEncoding: "gzip", candidate: Array("{}".utf8)))
        #expect(exploded.outcome == .uncomparable)
        #expect(exploded.reason?.contains("more than") == true)

        let broken = worker.record(for: try Self.job(primary: [0x1F, 0x8B, 0x00, 0x01], primaryEncoding: "gzip", candidate: Array("{}".utf8)))
        #expect(broken.outcome == .uncomparable)
        #expect(broken.reason?.contains("not valid gzip") == true)

        let brotli = worker.record(for: try Self.job(primary: [1, 2, 3], primaryEncoding: "br", candidate: Array("{}".utf8)))
        #expect(brotli.outcome == .uncomparable)
        #expect(brotli.reason?.contains("br-encoded") == true)
    }
}
