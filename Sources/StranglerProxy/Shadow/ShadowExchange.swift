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
    private let routeID: String
    private let compare: CompareSettings?
    private let tableVersion: String
    private let requestID: String
    private let method: HTTPMethod
    private let uri: String
    private let candidateRequest: OutboundRequest
    private let noiseRequest: OutboundRequest?
    /// Who gets the copy.
    let candidateUpstream: String
    private let limit: Int
    private var requestBody: [ByteBuffer] = []
    private var requestBytes = 0
    private var primary: ShadowJob.Side
    private var primaryBytes = 0
    private var primaryDone = false
    private var skipReason: String?
    private let candidate: SideCall
    /// Legacy called a second time, when this request is a noise probe.
    private let noise: SideCall?
    private let primaryStart: NIODeadline
    private var finished = false

    /// - Parameter noiseRequest: when set, the request also goes to the primary upstream a second
    ///   time, to learn which pointers differ between two answers of the same legacy.
    init(
        loop: LoopContext,
        route entry: LoopContext.RouteEntry,
        tableVersion: String,
        requestID: String,
        method: HTTPMethod,
        uri: String,
        candidateRequest: OutboundRequest,
        noiseRequest: OutboundRequest?,
        primaryUpstream: String,
        candidateUpstream: String
    ) {
        self.loop = loop
        self.routeID = entry.route.id
        self.compare = entry.route.compare
        self.tableVersion = tableVersion
        self.requestID = requestID
        self.method = method
        self.uri = uri
        self.candidateRequest = candidateRequest
        self.noiseRequest = noiseRequest
        self.candidateUpstream = candidateUpstream
        self.limit = loop.configuration.maxCaptureBytes
        self.primary = ShadowJob.Side(upstream: primaryUpstream)
        self.primaryStart = .now()
        loop.shadowsInFlight += 1
        #if DEBUG
        loop.live.shadowExchanges.wrappingIncrement(ordering: .relaxed)
        #endif
        let compared = entry.route.compare?.headers ?? []
        let timeoutMs = entry.route.shadow?.timeoutMs
        candidate = SideCall(loop: loop, upstream: candidateUpstream, role: .candidate, timeoutMs: timeoutMs, comparedHeaders: compared)
        noise =
            noiseRequest == nil
            ? nil : SideCall(loop: loop, upstream: primaryUpstream, role: .noise, timeoutMs: timeoutMs, comparedHeaders: compared)
        candidate.exchange = self
        noise?.exchange = self
    }

    #if DEBUG
    deinit {
        loop.live.shadowExchanges.wrappingDecrement(ordering: .relaxed)
    }
    #endif

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

    /// The client's request is complete: send the copies.
    func requestEnded() {
        guard skipReason == nil else { return }
        candidate.send(candidateRequest, body: requestBody)
        if let noise, let noiseRequest { noise.send(noiseRequest, body: requestBody) }
        requestBody = []
    }

    // MARK: - The primary's answer, as it streams to the client

    func primaryHead(_ head: UpstreamResponseHead) {
        primary.captureHead(head, comparing: compare?.headers ?? [], bodyLimit: limit)
    }

    func primaryBody(_ buffer: ByteBuffer) {
        guard skipReason == nil else { return }
        primaryBytes += buffer.readableBytes
        if primaryBytes > limit {
            skip("body_too_large")
            return
        }
        primary.append(buffer)
    }

    func primaryEnded() {
        primary.milliseconds = Double((NIODeadline.now() - primaryStart).nanoseconds) / 1_000_000
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
        primary.dropCapture()
        candidate.cancel()
        noise?.cancel()
        finishIfReady()
    }

    /// Called by a side call when it is done.
    func sideCallFinished() {
        finishIfReady()
    }

    private func finishIfReady() {
        guard primaryDone, candidate.isDone, noise?.isDone ?? true, !finished else { return }
        finished = true
        loop.shadowsInFlight -= 1
        // A failed noise probe only loses the probe; the comparison still counts.
        let probe = noise.flatMap { $0.failure == nil ? $0.side : nil }
        var job = ShadowJob(
            routeID: routeID,
            compare: compare,
            tableVersion: tableVersion,
            requestID: requestID,
            method: method.rawValue,
            uri: uri,
            primary: primary,
            candidate: candidate.side,
            noise: probe,
            skipReason: skipReason ?? candidate.failure
        )
        if job.skipReason == nil, noise == nil, job.primary.isIdentical(to: job.candidate) {
            job.identical = true
            job.primary.dropCapture()
            job.candidate.dropCapture()
        }
        if let sink = loop.shadowSink, !sink.submit(job) {
            loop.metrics.recordShadowSkip(route: routeID, reason: "queue_full")
        }
    }
}
