/// A canary route's counts over some stretch of time: one tick, or its whole window.
public struct CanaryCounts: Sendable, Equatable {
    /// Answers the service gave clients.
    public var service: Int
    /// Of those, failures: 5xx, connect failure or timeout.
    public var serviceErrors: Int
    /// Comparisons made (match or mismatch).
    public var compared: Int
    /// Of those, mismatches that ``DifferenceExcuses`` did not excuse.
    public var mismatched: Int

    /// Counts from their parts; each defaults to zero.
    public init(service: Int = 0, serviceErrors: Int = 0, compared: Int = 0, mismatched: Int = 0) {
        self.service = service
        self.serviceErrors = serviceErrors
        self.compared = compared
        self.mismatched = mismatched
    }

    /// Both stretches' counts together, field by field: ticks summed into a window.
    public static func + (a: CanaryCounts, b: CanaryCounts) -> CanaryCounts {
        CanaryCounts(
            service: a.service + b.service,
            serviceErrors: a.serviceErrors + b.serviceErrors,
            compared: a.compared + b.compared,
            mismatched: a.mismatched + b.mismatched
        )
    }
}

/// Whether a canary's window breaks its gate: the decision auto-demote acts on.
public enum CanaryBreach {
    /// Why `window` breaks the route's gate (its defaults filled in), or nil.
    ///
    /// The service error rate is judged against `maxErrorRate` once the window holds
    /// `minRequests` answers, and the mismatch rate against `maxMismatchRate` once it holds
    /// `minRequests` comparisons, so that one early failure is not a 100% rate. A rate equal to
    /// its limit holds.
    public static func reason(gate: GateSettings?, window: CanaryCounts, minRequests: Int, windowSeconds: Int) -> String? {
        let gate = PromotionGate.effective(gate)
        if let limit = gate.maxErrorRate, window.service >= minRequests, window.service > 0 {
            let rate = Double(window.serviceErrors) / Double(window.service)
            if rate > limit {
                return
                    "service error rate \(PromotionGate.percent(rate)) (\(window.serviceErrors) of \(window.service) answers in the last \(windowSeconds)s) breaks gate maxErrorRate \(PromotionGate.percent(limit))"
            }
        }
        if let limit = gate.maxMismatchRate, window.compared >= minRequests, window.compared > 0 {
            let rate = Double(window.mismatched) / Double(window.compared)
            if rate > limit {
                return
                    "mismatch rate \(PromotionGate.percent(rate)) (\(window.mismatched) of \(window.compared) comparisons in the last \(windowSeconds)s) breaks gate maxMismatchRate \(PromotionGate.percent(limit))"
            }
        }
        return nil
    }
}
