import StranglerCore

/// The requests a shadowed exchange sends besides the primary: the copy for the candidate and,
/// when the plan probes for noise, a second copy for the primary's own upstream.
///
/// Built from the primary's outbound request, which goes upstream unchanged: the primary has no
/// marker of its own (a client's is dropped), so each copy gets one.
struct ShadowRequests {
    /// The copy for the candidate, marked with how it may write.
    let candidate: OutboundRequest
    /// The copy for the primary's upstream that measures its noise, if the plan probes.
    let noise: OutboundRequest?

    /// - Parameters:
    ///   - outbound: the primary's request as it goes upstream.
    ///   - writes: whether the candidate's copy is a dry run or a mirror.
    ///   - probes: a noise probe goes to the primary's upstream too.
    ///   - requestID: the exchange's request ID; a dry run's idempotency key is made from it, so
    ///     that a retried dry run is recognisably the same one.
    init(copying outbound: OutboundRequest, writes: ShadowWrites, probes: Bool, requestID: RequestIDValue) {
        var copy = outbound
        copy.appendHeader("X-Strangler-Shadow", writes == .dryRun ? "dry-run" : "mirror")
        if writes == .dryRun {
            copy.setHeader("Idempotency-Key", "strangler-" + requestID.string)
        }
        candidate = copy
        if probes {
            var probe = outbound
            probe.appendHeader("X-Strangler-Shadow", "mirror")
            noise = probe
        } else {
            noise = nil
        }
    }
}

extension ShadowExchange {
    /// The shadow exchange that ``ShadowPlan`` decides a request gets, if any; a skip is
    /// counted with its reason.
    ///
    /// - Parameters:
    ///   - head: the client's request head.
    ///   - outbound: the primary's request as it goes upstream (nil if none was made).
    ///   - entry: the matched route.
    ///   - servedBy: the upstream serving the primary.
    ///   - candidate: the upstream the copy goes to.
    ///   - requestID: the exchange's request ID.
    static func start(
        for head: ClientRequestHead,
        outbound: OutboundRequest?,
        entry: LoopContext.RouteEntry,
        servedBy: String,
        candidate: String,
        requestID: RequestIDValue,
        loop: LoopContext
    ) -> ShadowExchange? {
        guard let outbound else { return nil }
        let plan = ShadowPlan(
            entry: entry,
            method: head.method,
            servedBy: servedBy,
            shadowsInFlight: loop.shadowsInFlight,
            maxShadows: loop.configuration.maxShadowsPerLoop,
            noiseSampleRate: loop.configuration.noiseSampleRate,
            sampler: &loop.sampler
        )
        switch plan {
        case .sampledOut:
            return nil
        case .skipped(let reason):
            loop.metrics.recordShadowSkip(route: entry.route.id, reason: reason.rawValue)
            return nil
        case .copy(let writes, let probes):
            let requests = ShadowRequests(copying: outbound, writes: writes, probes: probes, requestID: requestID)
            return ShadowExchange(
                loop: loop,
                route: entry,
                tableVersion: loop.table.version,
                requestID: requestID.string,
                method: head.method,
                uri: head.uri,
                candidateRequest: requests.candidate,
                noiseRequest: requests.noise,
                primaryUpstream: servedBy,
                candidateUpstream: candidate
            )
        }
    }
}
