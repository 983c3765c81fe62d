import Foundation
import StranglerCore
import StranglerStore

/// The rules a mode change must pass, unless forced with a reason: the promotion gate, and the
/// legacy-quiet rule for retirement. Each returns what a forced change overrode, for the audit
/// trail's reason, or throws the refusal.
extension RouteController {
    /// The mode `operation` moves `route` to, and the canary share it asks for.
    static func target(of operation: Operation, from route: Route) throws(RouteOperationError) -> (mode: RouteMode, percent: Double?) {
        switch operation {
        case .set(let mode, let share):
            return (mode, share)
        case .promote:
            guard let next = route.mode.promoted else {
                throw RouteOperationError(.noStep, "\(route.id) is already \(route.mode.rawValue): the last step; nothing to promote to")
            }
            return (next, nil)
        case .demote:
            guard let previous = route.mode.demoted else {
                throw RouteOperationError(.noStep, "\(route.id) is already \(route.mode.rawValue): the first step; nothing to demote to")
            }
            return (previous, nil)
        }
    }

    /// What the gate said of a change, and what a forced change overrode.
    struct GateOutcome {
        /// The verdict, when the change needed one.
        var verdict: GateVerdict?
        /// The evidence judged, when the change needed a verdict.
        var evidence: RouteEvidence?
        /// The failed checks a forced change went past, for the audit trail.
        var overridden: String?
    }

    /// The promotion gate: a step up to canary or beyond, from canary or below, needs the route's
    /// gate to hold over its evidence. Auto-demotion never steps up, and skips it.
    /// - Throws: ``RouteOperationError/Code-swift.struct/gateRefused`` when the gate fails and the
    ///   change is not forced.
    func checkGate(_ route: Route, to target: RouteMode, by requester: Requester) async throws(RouteOperationError) -> GateOutcome {
        guard target > route.mode, target >= .canary, route.mode <= .canary, requester.source != .auto else { return GateOutcome() }
        let inspection = try await inspect(route, json: "")
        var outcome = GateOutcome(verdict: inspection.verdict, evidence: inspection.evidence)
        if !inspection.verdict.holds {
            let failed = inspection.verdict.checks.filter { !$0.passed }.map { "\($0.name) \($0.actual) vs \($0.limit)" }
            guard requester.force else {
                throw RouteOperationError(
                    .gateRefused,
                    "refused: \(route.id) \(route.mode.rawValue) → \(target.rawValue) needs its gate to hold over the comparisons since \(Self.timestamp(inspection.evidenceSince)); it does not. Gather more evidence, fix the service, or force the change with a reason.",
                    verdict: inspection.verdict,
                    evidence: inspection.evidence
                )
            }
            outcome.overridden = "gate (\(failed.joined(separator: "; ")))"
        }
        return outcome
    }

    /// The legacy-quiet rule: a route is retired only after legacy has served it nothing for
    /// the configured window (fallbacks and other modes still reach legacy).
    /// - Returns: what a forced change overrode, or nil.
    /// - Throws: ``RouteOperationError/Code-swift.struct/legacyStillServing`` when legacy served
    ///   the route within the window and the change is not forced.
    func checkLegacyQuiet(_ route: Route, to target: RouteMode, by requester: Requester) async throws(RouteOperationError) -> String? {
        guard target == .retired, route.mode != .retired else { return nil }
        await pendingTraffic()
        let last: Date?
        do { last = try await store.lastLegacyTraffic(routeID: route.id) } catch {
            throw RouteOperationError(.storeFailed, "cannot read route traffic in \(store.location): \(error)")
        }
        guard let last, last > Date().addingTimeInterval(-configuration.legacyQuietWindow - 60) else { return nil }
        let window = Self.describe(seconds: configuration.legacyQuietWindow)
        guard requester.force else {
            throw RouteOperationError(
                .legacyStillServing,
                "refused: legacy served \(route.id) as late as the minute of \(Self.timestamp(last)); a route is retired only after legacy has served it nothing for \(window). Wait, find who still reaches legacy (fallbacks, another mode), or force the change with a reason."
            )
        }
        return "legacy traffic at \(Self.timestamp(last)) within \(window)"
    }
}
