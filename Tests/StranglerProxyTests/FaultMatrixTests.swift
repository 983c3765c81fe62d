import Foundation
import NIOConcurrencyHelpers
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// One way an upstream can misbehave, and what the proxy must make of it (docs/reliability.md,
/// "Upstream faults").
struct UpstreamFault: Sendable, CustomTestStringConvertible {
    enum Setup: Sendable {
        /// The fault is the answer to the request (`/p/<name>`).
        case request
        /// Nothing listens on the upstream's port.
        case refused
        /// The upstream does this to every connection it accepts, before reading anything.
        case onAccept(FaultUpstream.AcceptMode)
    }

    /// What the client gets when the fault is on the upstream that serves it.
    enum ClientGets: Sendable {
        /// The proxy's own JSON error: the status and the `error` name (either of two where the
        /// fault can land on either side of a line the proxy draws: a reset right after the
        /// handshake may be seen while connecting or just after).
        case error(Int, String, or: String? = nil)
        /// The upstream's answer, relayed: its status and body.
        case relayed(Int, String)
        /// The head, then a close before the body's declared end (or its last chunk): a response
        /// that can't look complete.
        case aborted
    }

    /// What becomes of the copy when the fault is on the candidate of a shadow route.
    enum CandidateGets: Sendable {
        /// The candidate's answer is captured for comparison, with this status.
        case answered(Int)
        /// No comparison; the job is recorded as skipped with this reason (or the other one).
        case skipped(String, or: String? = nil)
    }

    let name: String
    var method = "GET"
    var setup = Setup.request
    /// The upstream timeout is the thing under test: short `timeoutMs` for the primary, short
    /// `shadow.timeoutMs` for the copy. Every other fault runs with generous timeouts.
    var timeoutUnderTest = false
    /// The upstream sends part of its answer and waits for the test before the rest.
    var gated = false
    let client: ClientGets
    let candidate: CandidateGets
    /// Whether the next request may go on the connection the fault came on: true for an
    /// exchange that ended cleanly (the connection must be reused), false for one that leaves it
    /// out of step (it must not), nil where the upstream closed it anyway.
    var reusable: Bool?

    var testDescription: String { setup.isRefused ? name : "\(method) \(name)" }

    /// An answer that breaks HTTP/1.1: 502 on the primary side, `candidate_invalid_response` on
    /// the shadow side, and the connection never reused.
    static func invalidResponse(_ name: String) -> UpstreamFault {
        .init(
            name: name,
            client: .error(502, "upstream_invalid_response"),
            candidate: .skipped("candidate_invalid_response"),
            reusable: false
        )
    }
}

extension UpstreamFault.Setup {
    var isRefused: Bool {
        if case .refused = self { return true }
        return false
    }
}

/// The fault matrix: each way an upstream can misbehave, on the upstream that serves the client
/// and on the candidate of a shadow route. Each case asserts what the client gets, that the
/// upstream connection is dropped when it is out of step (and kept when it is not), and that the
/// proxy goes on serving fresh connections.
///
/// Every timeout is generous except where the timeout is what is tested; nothing asserts how long
/// anything took, and every wait is a bounded poll.
@Suite("Fault matrix: a misbehaving upstream", .serialized)
struct FaultMatrixTests {
    static let faults: [UpstreamFault] = [
        .init(name: "refused", setup: .refused, client: .error(502, "upstream_unreachable"), candidate: .skipped("candidate_unreachable")),
        .init(
            name: "accept-then-close",
            setup: .onAccept(.close),
            client: .error(502, "upstream_closed"),
            candidate: .skipped("candidate_closed")
        ),
        .init(
            name: "accept-then-reset",
            setup: .onAccept(.reset),
            client: .error(502, "upstream_closed", or: "upstream_unreachable"),
            candidate: .skipped("candidate_closed", or: "candidate_unreachable")
        ),
        .init(
            name: "hang-head",
            timeoutUnderTest: true,
            client: .error(504, "upstream_timeout"),
            candidate: .skipped("candidate_timeout"),
            reusable: false
        ),
        .init(name: "head-hang", timeoutUnderTest: true, client: .aborted, candidate: .skipped("candidate_timeout"), reusable: false),
        .init(name: "slow-drip", client: .relayed(200, "drip"), candidate: .answered(200), reusable: true),
        .init(name: "short-body", client: .aborted, candidate: .skipped("candidate_closed")),
        .init(name: "short-chunked", client: .aborted, candidate: .skipped("candidate_closed")),
        .invalidResponse("garbage-status"),
        .invalidResponse("header-nul"),
        .invalidResponse("header-bare-cr"),
        .invalidResponse("header-obs-fold"),
        .invalidResponse("cl-conflict"),
        // Both framings: two parsers could end the body in different places, so it is refused
        // (as nginx and llhttp do) rather than read by Transfer-Encoding.
        .invalidResponse("cl-and-chunked"),
        .invalidResponse("chunk-nonhex"),
        .invalidResponse("chunk-overflow"),
        .invalidResponse("chunk-no-crlf"),
        // The same bad chunk size after the head and a first chunk reached the client.
        .init(
            name: "chunk-nonhex-late",
            gated: true,
            client: .aborted,
            candidate: .skipped("candidate_invalid_response"),
            reusable: false
        ),
        .invalidResponse("huge-head"),
        .init(name: "interim-100", client: .relayed(200, "final"), candidate: .answered(200), reusable: true),
        .init(name: "interim-103", client: .relayed(200, "final"), candidate: .answered(200), reusable: true),
        .invalidResponse("switching-101"),
        .init(name: "head-body", method: "HEAD", client: .relayed(200, ""), candidate: .answered(200), reusable: false),
        .init(name: "no-content-body", client: .relayed(204, ""), candidate: .answered(204), reusable: false),
        .init(name: "not-modified-body", client: .relayed(304, ""), candidate: .answered(304), reusable: false),
        // Served keep-alive; the next request on that connection is met with a close (a reset). The
        // fault shows on the next request, which must still succeed (retried once, fresh).
        .init(name: "stale-close", client: .relayed(200, "ok 1"), candidate: .answered(200)),
        .init(name: "stale-reset", client: .relayed(200, "ok 1"), candidate: .answered(200)),
        // Served keep-alive; the upstream closes the connection while it is idle in the pool.
        .init(name: "idle-close", client: .relayed(200, "ok 1"), candidate: .answered(200)),
        // Answers a POST before reading its body; keeps the connection open, reading nothing.
        .init(name: "early-413", method: "POST", client: .relayed(413, "too large"), candidate: .answered(413)),
        // Answers a POST before reading its body, then closes in stages.
        .init(name: "early-400", method: "POST", client: .relayed(400, "bad request"), candidate: .answered(400)),
    ]

    static let routes = """
        [{"id": "p", "path": "/p/**", "mode": "retired", "service": "service"},
         {"id": "sh", "path": "/sh/**", "mode": "shadow", "service": "service", "shadow": {"writes": "mirror"}},
         {"id": "sht", "path": "/sht/**", "mode": "shadow", "service": "service", "shadow": {"timeoutMs": 1000}}]
        """

    /// The upstreams' `timeoutMs`: short only where the upstream timeout is under test.
    static func upstreamExtra(_ fault: UpstreamFault, primary: Bool) -> String {
        primary && fault.timeoutUnderTest ? #", "timeoutMs": 2000"# : #", "timeoutMs": 30000"#
    }

    /// The declared length of an early-answered POST's body, and how much of it goes before the
    /// answer is read.
    static let uploadLength = 1_000_000
    static let uploadFirstPart = 64 * 1024

    // MARK: - The fault on the upstream that serves the client

    @Test("primary: what the client gets, what becomes of the upstream connection, and the proxy serves on", arguments: faults)
    func primary(_ fault: UpstreamFault) async throws {
        let upstream = try FaultUpstream()
        defer { upstream.stop() }
        let refusing = fault.setup.isRefused ? try RefusingPort() : nil
        defer { withExtendedLifetime(refusing) {} }
        try await withProxy(
            routes: Self.routes,
            upstreamExtra: Self.upstreamExtra(fault, primary: true),
            servicePort: refusing?.port ?? upstream.port,
            configure: { $0.threads = 1 }  // one loop, one pool: a connection kept in it is the one the next request gets
        ) { proxy in
            if case .onAccept(let mode) = fault.setup { upstream.onAccept = mode }
            let client = try await RawConnection.connect(port: proxy.port)
            let id = "p-\(fault.name)"
            var request = "\(fault.method) /p/\(fault.name) HTTP/1.1\r\nHost: shop.example\r\nX-Request-Id: \(id)\r\n"
            let early = fault.name.hasPrefix("early-")
            if fault.method == "POST" {
                request += "Content-Length: \(early ? Self.uploadLength : 4)\r\n\r\n"
                request += early ? String(repeating: "u", count: Self.uploadFirstPart) : "body"
            } else {
                request += "\r\n"
            }
            try await client.send(request)

            var keptOpen = false
            switch fault.client {
            case .error(let status, let name, let other):
                let response = try await client.readResponse()
                #expect(response.status == status)
                let error = response.json()["error"] as? String
                #expect(error == name || (other != nil && error == other), "\(response.text)")
                #expect(response.json()["requestId"] as? String == id)
                #expect(response.header("x-request-id") == id)
                keptOpen = response.header("connection")?.lowercased() != "close"
            case .relayed(let status, let body):
                let response = try await client.readResponse(noBody: fault.method == "HEAD")
                #expect(response.status == status)
                #expect(response.text == body)
                #expect(response.header("x-strangler-upstream") == "service")
                keptOpen = response.header("connection")?.lowercased() != "close"
            case .aborted:
                if fault.gated {
                    // The head and the first chunk reached the client before the bad chunk size.
                    let seen = try await client.readRaw(until: "hello")
                    #expect(seen.hasPrefix("HTTP/1.1 200 OK\r\n"))
                    upstream.openGate()
                }
                do {
                    let response = try await client.readResponse()
                    Issue.record("a response that looks complete: \(response.status) \(response.text)")
                } catch let closed as RawConnection.ClosedEarly {
                    // The relayed head arrived (so no error status could follow), then the close.
                    #expect(String(decoding: closed.received, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n"), "\(closed)")
                }
            }

            if early {
                // An answer before the request's end ends the connection in a staged close
                // (docs/reliability.md, "Staged close"): the client reads the answer and the
                // close, and the rest of its body is read and dropped rather than left stuck in
                // its socket.
                #expect(!keptOpen, "an early answer went out without Connection: close")
                #expect(await client.waitUntilClosed(seconds: 30), "the proxy announced a close but did not close")
                let rest = Self.uploadLength - Self.uploadFirstPart
                #expect(await Self.sendInBackground(client, String(repeating: "u", count: rest)), "the proxy stopped taking the body")
            }
            let faultConnection = upstream.requests(fault: fault.name).last?.connection
            if fault.name == "idle-close", let faultConnection {
                #expect(await upstream.wait { $0.isClosed(faultConnection) })
            }

            // The upstream is healthy again (for the faults that hit every connection).
            upstream.onAccept = .serve
            // The next request on the same client connection, when it stayed open.
            if keptOpen, !client.isClosed, !fault.setup.isRefused {
                try await client.send("GET /p/ok HTTP/1.1\r\nHost: shop.example\r\n\r\n")
                let next = try await client.readResponse()
                #expect(next.status == 200)
                #expect(next.text.hasPrefix("ok "), "\(next.text)")
                Self.checkConnection(next, after: fault, on: faultConnection)
                if fault.name.hasPrefix("stale-") {
                    // It went first on the pooled connection, met the close, and went again.
                    let attempts = upstream.requests(fault: "ok").map(\.connection)
                    #expect(attempts.count == 2)
                    #expect(attempts.first == faultConnection)
                    #expect(next.text == "ok \(attempts.last ?? -1)")
                }
            }
            await client.close()

            // The proxy serves on: a fresh client connection, to the same upstream when it is back
            // to health, and to another upstream.
            if !fault.setup.isRefused {
                let fresh = try await RawConnection.get(port: proxy.port, "/p/ok")
                #expect(fresh.status == 200)
                #expect(fresh.text.hasPrefix("ok "), "\(fresh.text)")
                Self.checkConnection(fresh, after: fault, on: faultConnection)
            }
            let other = try await RawConnection.get(port: proxy.port, "/echo")
            #expect(other.status == 200)
            #expect(other.json()["upstream"] as? String == "legacy")
        }
    }

    /// `response` came from `/p/ok`, whose body names the upstream connection it came on.
    static func checkConnection(_ response: RawConnection.Response, after fault: UpstreamFault, on faultConnection: Int?) {
        guard let reusable = fault.reusable, let faultConnection else { return }
        if reusable {
            #expect(response.text == "ok \(faultConnection)", "a connection that ended cleanly was not reused")
        } else {
            #expect(response.text != "ok \(faultConnection)", "the proxy reused a connection left out of step")
        }
    }

    /// Sends `text` without blocking the test on it; returns whether the write completed within a
    /// generous bound (it can't if the proxy never reads again).
    static func sendInBackground(_ client: RawConnection, _ text: String) async -> Bool {
        let done = NIOLockedValueBox(false)
        let task = Task {
            try? await client.send(text)
            done.withLockedValue { $0 = true }
        }
        for _ in 0..<1500 where !done.withLockedValue({ $0 }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let completed = done.withLockedValue { $0 }
        if !completed {
            await client.close()
            task.cancel()
        }
        return completed
    }

    // MARK: - The fault on the candidate of a shadow route

    @Test("shadow: the fault on the candidate leaves the client's answer exactly legacy's", arguments: faults)
    func shadow(_ fault: UpstreamFault) async throws {
        let upstream = try FaultUpstream()
        defer { upstream.stop() }
        let refusing = fault.setup.isRefused ? try RefusingPort() : nil
        defer { withExtendedLifetime(refusing) {} }
        let sink = RecordingShadowSink()
        try await withProxy(
            routes: Self.routes,
            upstreamExtra: Self.upstreamExtra(fault, primary: false),
            servicePort: refusing?.port ?? upstream.port,
            shadowSink: sink,
            configure: { $0.threads = 1 }
        ) { proxy in
            if case .onAccept(let mode) = fault.setup { upstream.onAccept = mode }
            let prefix = fault.timeoutUnderTest ? "/sht" : "/sh"
            let id = "sh-\(fault.name)"
            // Legacy answers by the path's last segment: a HEAD-style answer (Content-Length 1234,
            // no body) for HEAD, 2,000 bytes of a fixed pattern otherwise.
            let target = fault.method == "HEAD" ? "\(prefix)/\(fault.name)/head" : "\(prefix)/\(fault.name)/big?bytes=2000"
            var request = "\(fault.method) \(target) HTTP/1.1\r\nHost: shop.example\r\nX-Request-Id: \(id)\r\n"
            if fault.method == "POST" {
                request += "Content-Length: 100000\r\n\r\n" + String(repeating: "u", count: 100_000)
            } else {
                request += "\r\n"
            }
            let response = try await Self.exchange(proxy.port, request, noBody: fault.method == "HEAD")
            Self.expectLegacyAnswer(response, head: fault.method == "HEAD")
            if fault.gated { upstream.openGate() }

            let job = try #require(await sink.job(requestID: id), "no shadow job was recorded")
            switch fault.candidate {
            case .answered(let status):
                #expect(job.skipReason == nil)
                #expect(job.candidate.status == status)
            case .skipped(let reason, let other):
                #expect(job.skipReason == reason || (other != nil && job.skipReason == other), "\(job.skipReason ?? "nil")")
            }
            #expect(job.primary.status == 200)

            // The proxy serves on, and the candidate's side is healthy again once the upstream is.
            upstream.onAccept = .serve
            let faultConnection = upstream.requests(fault: fault.name).last?.connection
            if fault.name == "idle-close", let faultConnection {
                #expect(await upstream.wait { $0.isClosed(faultConnection) })
            }
            let next = try await Self.exchange(
                proxy.port,
                "GET /sh/ok/big?bytes=2000 HTTP/1.1\r\nHost: shop.example\r\nX-Request-Id: \(id)-next\r\n\r\n"
            )
            Self.expectLegacyAnswer(next, head: false)
            let nextJob = try #require(await sink.job(requestID: "\(id)-next"), "no shadow job was recorded")
            if fault.setup.isRefused {
                #expect(nextJob.skipReason == "candidate_unreachable")
            } else {
                #expect(nextJob.skipReason == nil, "the copy after the fault was lost")
                #expect(nextJob.candidate.status == 200)
                if let reusable = fault.reusable, let faultConnection, let copy = upstream.requests(fault: "ok").last {
                    #expect((copy.connection == faultConnection) == reusable, "connection \(copy.connection) after the fault's \(faultConnection)")
                }
            }
            // Whatever the fault did, nothing of either shadowed request outlives it.
            var live = await proxy.server.liveShadowObjects()
            for _ in 0..<500 where live.exchanges + live.sideCalls > 0 {
                try await Task.sleep(for: .milliseconds(20))
                live = await proxy.server.liveShadowObjects()
            }
            #expect(live.exchanges == 0 && live.sideCalls == 0, "\(live.exchanges) shadow exchanges and \(live.sideCalls) side calls alive")
        }
    }

    static func exchange(_ port: Int, _ request: String, noBody: Bool = false) async throws -> RawConnection.Response {
        let client = try await RawConnection.connect(port: port)
        try await client.send(request)
        let response = try await client.readResponse(noBody: noBody)
        await client.close()
        return response
    }

    /// Legacy's answer, unchanged, whatever the candidate did.
    static func expectLegacyAnswer(_ response: RawConnection.Response, head: Bool) {
        #expect(response.status == 200)
        #expect(response.header("x-strangler-upstream") == "legacy")
        if head {
            #expect(response.header("content-length") == "1234")
            #expect(response.body.isEmpty)
        } else {
            #expect(response.body == TestUpstream.patternBytes(count: 2000))
        }
    }

    // MARK: - Faults that need more than one request to show

    @Test("a POST on a pooled connection the upstream drops as it is reused gets 502, and is not sent again")
    func stalePostIsNotReplayed() async throws {
        let upstream = try FaultUpstream()
        defer { upstream.stop() }
        try await withProxy(
            routes: Self.routes,
            upstreamExtra: #", "timeoutMs": 30000"#,
            servicePort: upstream.port,
            configure: { $0.threads = 1 }
        ) { proxy in
            let client = try await RawConnection.connect(port: proxy.port)
            try await client.send("GET /p/stale-close HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await client.readResponse().text == "ok 1")
            try await client.send("POST /p/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
            let response = try await client.readResponse()
            // The upstream may have acted on it: a POST is not idempotent, so it is not replayed.
            #expect(response.status == 502)
            #expect(response.json()["error"] as? String == "upstream_closed")
            #expect(upstream.requests(fault: "ok").count == 1)
            await client.close()
            #expect(try await RawConnection.get(port: proxy.port, "/p/ok").status == 200)
        }
    }

    @Test(
        "bytes after a bodyless answer: a request pipelined behind it does not go on that connection",
        arguments: [("HEAD", "head-body"), ("GET", "no-content-body"), ("GET", "not-modified-body")]
    )
    func pipelinedAfterStrayBody(_ method: String, _ fault: String) async throws {
        let upstream = try FaultUpstream()
        defer { upstream.stop() }
        try await withProxy(
            routes: Self.routes,
            upstreamExtra: #", "timeoutMs": 30000"#,
            servicePort: upstream.port,
            configure: { $0.threads = 1 }
        ) { proxy in
            let client = try await RawConnection.connect(port: proxy.port)
            // Both requests in one write: the second is waiting when the first's answer ends.
            try await client.send(
                "\(method) /p/\(fault) HTTP/1.1\r\nHost: x\r\n\r\nPOST /p/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
            )
            let first = try await client.readResponse(noBody: true)
            #expect(first.status != 502)
            let second = try await client.readResponse()
            #expect(second.status == 200, "\(second.text)")
            let faultConnection = try #require(upstream.requests(fault: fault).first?.connection)
            let posts = upstream.requests(fault: "ok")
            #expect(posts.count == 1, "the POST reached the upstream \(posts.count) times")
            #expect(posts.first?.connection != faultConnection, "the POST went on the connection left out of step")
            await client.close()
        }
    }

    @Test("an upstream that answers while the client's upload is held back by backpressure does not leave the upload stuck")
    func earlyAnswerToABackedUpUpload() async throws {
        let upstream = try FaultUpstream()
        defer { upstream.stop() }
        // More than the socket buffers between the client, the proxy and the upstream hold, so
        // the proxy stops reading the client while the upstream takes nothing.
        let length = 48 * 1024 * 1024
        let piece = String(repeating: "u", count: 256 * 1024)
        try await withProxy(
            routes: Self.routes,
            upstreamExtra: #", "timeoutMs": 30000"#,
            servicePort: upstream.port,
            configure: {
                $0.threads = 1
                $0.maxBodyBytes = 64 * 1024 * 1024
            }
        ) { proxy in
            let client = try await RawConnection.connect(port: proxy.port)
            try await client.send("POST /p/early-413-late HTTP/1.1\r\nHost: x\r\nContent-Length: \(length)\r\n\r\n")
            let sent = NIOLockedValueBox(0)
            let finished = NIOLockedValueBox(false)
            let upload = Task {
                defer { finished.withLockedValue { $0 = true } }
                for _ in 0..<(length / piece.utf8.count) {
                    guard (try? await client.send(piece)) != nil else { return }
                    sent.withLockedValue { $0 += piece.utf8.count }
                }
            }
            // Once the upload has stopped moving (the buffers are full), the upstream answers.
            // If it never stops (a machine with larger buffers), this is the plain early answer.
            var last = -1
            for _ in 0..<100 {
                try await Task.sleep(for: .milliseconds(200))
                let now = sent.withLockedValue { $0 }
                if now == last || now == length { break }
                last = now
            }
            #expect(sent.withLockedValue { $0 } < length, "the upload never backed up; the test shows nothing")
            upstream.openGate()
            let response = try await client.readResponse()
            #expect(response.status == 413)
            #expect(response.text == "too large")
            #expect(response.header("connection")?.lowercased() == "close")
            #expect(await client.waitUntilClosed(seconds: 30), "the proxy announced a close but did not close")
            // The proxy reads the rest of the body and drops it (or closes for good once its
            // linger bounds are over): either way the client's upload comes to an end.
            for _ in 0..<3000 where !finished.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
            #expect(finished.withLockedValue { $0 }, "the upload is stuck: the proxy no longer reads the client")
            await client.close()
            await upload.value
            #expect(try await RawConnection.get(port: proxy.port, "/p/ok").status == 200)
        }
    }
}

/// A shadow sink that keeps every job, for tests that look at what a shadowed request produced.
final class RecordingShadowSink: ShadowSink {
    private let jobs = NIOLockedValueBox<[ShadowJob]>([])

    func submit(_ job: ShadowJob) -> Bool {
        jobs.withLockedValue { $0.append(job) }
        return true
    }

    /// The job of the request with this id, once submitted (polling, at most `seconds`).
    func job(requestID: String, seconds: Double = 30) async -> ShadowJob? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let job = jobs.withLockedValue({ $0.first { $0.requestID == requestID } }) { return job }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}
