import NIOCore
import NIOHTTP1
import StranglerCore

/// The copy of one request sent to the other side, and the capture of both answers.
///
/// It lives on the client connection's event loop but never touches the client's channel: the
/// client's response is written by ``ProxyHandler`` whatever happens here. The candidate call
/// borrows its own connection from the same loop's pool and has its own timeout. When both
/// answers are in (or the candidate failed), the job goes to the ``ShadowSink``.
final class ShadowExchange {
    private let loop: LoopContext
    private let route: Route
    private let tableVersion: String
    private let requestID: String
    private let method: HTTPMethod
    private let uri: String
    private let head: HTTPRequestHead
    private let limit: Int
    private var requestBody: [ByteBuffer] = []
    private var requestBytes = 0
    private var primary: ShadowJob.Side
    private var candidate: ShadowJob.Side
    private var primaryBytes = 0
    private var candidateBytes = 0
    private var primaryDone = false
    private var candidateDone = false
    private var skipReason: String?
    private var connection: UpstreamConnection?
    private var pool: UpstreamPool?
    private var timeoutTask: Scheduled<Void>?
    private let primaryStart: NIODeadline
    private var candidateStart = NIODeadline.now()
    private var finished = false

    init(
        loop: LoopContext, route: Route, tableVersion: String, requestID: String, method: HTTPMethod, uri: String,
        head: HTTPRequestHead, primaryUpstream: String, candidateUpstream: String
    ) {
        self.loop = loop
        self.route = route
        self.tableVersion = tableVersion
        self.requestID = requestID
        self.method = method
        self.uri = uri
        self.head = head
        self.limit = loop.configuration.maxCaptureBytes
        self.primary = ShadowJob.Side(upstream: primaryUpstream)
        self.candidate = ShadowJob.Side(upstream: candidateUpstream)
        self.primaryStart = .now()
        loop.shadowsInFlight += 1
    }

    // MARK: - The client's request

    func requestBody(_ buffer: ByteBuffer) {
        guard skipReason == nil else { return }
        requestBytes += buffer.readableBytes
        if requestBytes > limit {
            skip("body_too_large")
            return
        }
        requestBody.append(buffer)
    }

    /// The client's request is complete: send the copy.
    func requestEnded() {
        guard skipReason == nil, let pool = loop.pool(named: candidate.upstream) else {
            if skipReason == nil { skip("candidate_unknown") }
            return
        }
        self.pool = pool
        candidateStart = .now()
        pool.acquire { connection, error in
            guard let connection else {
                self.candidateFailed(error?.isConnectFailure == true ? "candidate_unreachable" : "candidate_error")
                return
            }
            guard !self.candidateDone else {
                pool.release(connection, reusable: true)
                return
            }
            self.connection = connection
            connection.delegate = self
            connection.write(.head(self.head))
            for part in self.requestBody { connection.write(.body(.byteBuffer(part))) }
            connection.write(.end(nil))
            connection.flush()
            self.requestBody = []
            let timeout = self.route.shadow?.timeoutMs ?? pool.upstream.timeoutMs
            self.timeoutTask = self.loop.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(timeout))) {
                self.candidateFailed("candidate_timeout")
            }
        }
    }

    // MARK: - The primary's answer, as it streams to the client

    func primaryHead(_ head: HTTPResponseHead) {
        primary.status = Int(head.status.code)
        primary.headers = head.headers.map { ($0.name, $0.value) }
    }

    func primaryBody(_ buffer: ByteBuffer) {
        guard skipReason == nil else { return }
        primaryBytes += buffer.readableBytes
        if primaryBytes > limit {
            skip("body_too_large")
            return
        }
        primary.body.append(buffer)
    }

    func primaryEnded() {
        primary.milliseconds = Self.milliseconds(since: primaryStart)
        primaryDone = true
        finishIfReady()
    }

    /// The primary exchange did not complete (upstream failure or client gone).
    func primaryFailed() {
        primaryDone = true
        skip("primary_incomplete")
    }

    // MARK: - Ending

    private func skip(_ reason: String) {
        if skipReason == nil { skipReason = reason }
        requestBody = []
        primary.body = []
        candidate.body = []
        // Nothing more is needed from the candidate.
        if !candidateDone {
            candidateDone = true
            abandonCandidate()
        }
        finishIfReady()
    }

    private func candidateFailed(_ reason: String) {
        guard !candidateDone else { return }
        candidateDone = true
        abandonCandidate()
        if skipReason == nil { skipReason = reason }
        finishIfReady()
    }

    private func abandonCandidate() {
        timeoutTask?.cancel()
        timeoutTask = nil
        if let connection {
            self.connection = nil
            connection.close()
        }
    }

    private func finishIfReady() {
        guard primaryDone, candidateDone, !finished else { return }
        finished = true
        loop.shadowsInFlight -= 1
        let job = ShadowJob(
            route: route, tableVersion: tableVersion, requestID: requestID, method: method.rawValue, uri: uri,
            primary: primary, candidate: candidate, skipReason: skipReason
        )
        if let sink = loop.shadowSink, !sink.submit(job) {
            loop.metrics.recordShadowSkip(route: route.id, reason: "queue_full")
        }
    }

    static func milliseconds(since start: NIODeadline) -> Double {
        Double((NIODeadline.now() - start).nanoseconds) / 1_000_000
    }
}

extension ShadowExchange: UpstreamResponseDelegate {
    func upstreamDidReceiveHead(_ head: HTTPResponseHead) {
        candidate.status = Int(head.status.code)
        candidate.headers = head.headers.map { ($0.name, $0.value) }
    }

    func upstreamDidReceiveBody(_ buffer: ByteBuffer) {
        guard !candidateDone else { return }
        candidateBytes += buffer.readableBytes
        if candidateBytes > limit {
            candidateFailed("body_too_large")
            return
        }
        candidate.body.append(buffer)
    }

    func upstreamDidReceiveEnd(_ trailers: HTTPHeaders?) {
        guard !candidateDone else { return }
        candidateDone = true
        timeoutTask?.cancel()
        timeoutTask = nil
        candidate.milliseconds = Self.milliseconds(since: candidateStart)
        if let connection, let pool {
            self.connection = nil
            pool.release(connection, reusable: true)
        }
        finishIfReady()
    }

    func upstreamDidFail(_ error: Error) {
        connection = nil
        candidateFailed("candidate_closed")
    }

    func upstreamReadComplete() {}

    func upstreamWritabilityChanged(isWritable: Bool) {}
}
