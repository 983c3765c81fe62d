/// What a route's differences may be without making a comparison a mismatch: learned noise and
/// accepted differences.
///
/// One rule, used wherever a comparison is judged: by the gates and reports over the store, and by
/// the canary monitor over live comparisons. A differing status or header is never excused; a
/// body difference is when its pointer is learned noise or an accepted difference covers it.
public struct DifferenceExcuses: Sendable {
    /// Pointers learned as noise (legacy differed from itself there).
    public var noise: Set<String>
    /// Patterns of the route's active accepted differences.
    public var accepted: [PointerPattern]

    /// - Parameters:
    ///   - noise: the route's pointers learned as noise.
    ///   - accepted: the patterns of its active accepted differences.
    public init(noise: Set<String> = [], accepted: [PointerPattern] = []) {
        self.noise = noise
        self.accepted = accepted
    }

    /// Whether an accepted difference covers `pointer`.
    public func isAccepted(_ pointer: String) -> Bool {
        accepted.contains { $0.covers(pointer: pointer) }
    }

    /// Whether `pointer` is learned noise.
    public func isNoise(_ pointer: String) -> Bool {
        noise.contains(pointer)
    }

    /// Whether this one difference is excused.
    public func excuses(_ difference: Difference) -> Bool {
        switch difference.kind {
        case .status, .header: false
        default: isNoise(difference.pointer) || isAccepted(difference.pointer)
        }
    }

    /// Whether every difference is excused, so that the comparison is no mismatch.
    public func excusesAll(_ differences: [Difference]) -> Bool {
        differences.allSatisfy(excuses)
    }
}
