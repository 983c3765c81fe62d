import NIOHTTP1
import StranglerCore

/// Whether a request on a shadowed route gets a copy on the other side, and what kind, decided
/// from the route, the request and the loop's load alone.
enum ShadowPlan: Equatable {
    /// Left out by the route's sample rate: not a skip, nothing is counted.
    case sampledOut
    /// Prevented, and counted with a reason.
    case skipped(ShadowSkipReason)
    /// A copy with `writes` semantics (`mirror` or `dryRun`); `probe`: the request also goes
    /// to legacy a second time, to learn which parts of its answers differ anyway.
    case copy(writes: ShadowWrites, probe: Bool)

    /// Plans the copy for a request matched by `entry`.
    ///
    /// The route is read in place in its shared entry: a `Route` copy retains a score of fields.
    /// The sampler is drawn from in a fixed order (sample rate, then noise probe), and only as
    /// far as the decision needs it.
    ///
    /// - Parameters:
    ///   - servedBy: the upstream that serves the request; a noise probe is only for legacy.
    ///   - shadowsInFlight: copies in flight on this loop, against `maxShadows`.
    ///   - noiseSampleRate: the share of safe legacy requests that are noise probes.
    init(
        entry: LoopContext.RouteEntry,
        method: HTTPMethod,
        servedBy: String,
        shadowsInFlight: Int,
        maxShadows: Int,
        noiseSampleRate: Double,
        sampler: inout Xorshift
    ) {
        let rate = entry.route.shadow?.sampleRate ?? 1.0
        if rate < 1.0, sampler.unit() >= rate {
            self = .sampledOut
            return
        }
        let safe = method == .GET || method == .HEAD || method == .OPTIONS
        let writes = safe ? ShadowWrites.mirror : (entry.route.shadow?.writes ?? .skip)
        if writes == .skip {
            self = .skipped(.writeSkipped)
            return
        }
        guard shadowsInFlight < maxShadows else {
            self = .skipped(.concurrency)
            return
        }
        // Noise probe: a sampled safe request also goes to legacy a second time (README.md, the `compare` key's `learnNoise`).
        let probe =
            safe && servedBy == entry.route.legacy && entry.route.compare?.learnNoise == true && sampler.unit() < noiseSampleRate
        self = .copy(writes: writes, probe: probe)
    }
}
