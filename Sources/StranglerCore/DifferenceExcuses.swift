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

    /// A route's excuses as the store keeps them: noise counts by pointer (a pointer is noise
    /// once legacy differed from itself there at least once) and accepted-difference patterns.
    public init(noiseCounts: [String: Int], acceptedPatterns: some Sequence<String>) {
        self.init(noise: Set(noiseCounts.lazy.filter { $0.value > 0 }.map(\.key)), accepted: acceptedPatterns.map(PointerPattern.init))
    }

    /// Whether a body difference at `pointer` is excused, as noise or as accepted.
    public func excuses(pointer: String) -> Bool {
        isNoise(pointer) || isAccepted(pointer)
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
        default: excuses(pointer: difference.pointer)
        }
    }

    /// Whether every difference is excused, so that the comparison is no mismatch.
    public func excusesAll(_ differences: [Difference]) -> Bool {
        differences.allSatisfy(excuses)
    }
}
