import StranglerCore

extension GateVerdict {
    /// The gate with its coverage check added: a gate does not pass on evidence with gaps (a
    /// window reaching before retention, or minutes in which the recorder dropped comparisons),
    /// because its figures would speak for time they do not cover.
    public func requiring(_ coverage: EvidenceCoverage) -> GateVerdict {
        var verdict = self
        verdict.checks.append(.init(name: "coverage", actual: coverage.summary, limit: "no gaps", passed: coverage.complete))
        return verdict
    }
}
