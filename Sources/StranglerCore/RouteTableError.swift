/// Everything wrong with a route table, each problem with the JSON path it is about.
///
/// A table with any problem is rejected whole; the proxy keeps serving the previous one. Only the
/// first ``reportedLimit`` problems are kept: a hostile table can have millions, and every place
/// that shows them (the CLI, the log, `/api/routes`) must stay small. The rest are counted in
/// ``moreProblems``.
public struct RouteTableError: Error, Sendable, CustomStringConvertible {
    /// How many problems an error keeps; the rest are only counted.
    public static let reportedLimit = 100

    /// One problem in the table.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// JSON path of the offending value, e.g. `routes[3].service`; `$` for the whole document.
        public var path: String
        /// What is wrong, and where possible what would be right.
        public var message: String

        /// - Parameters:
        ///   - path: the JSON path of the offending value, `$` for the whole document.
        ///   - message: what is wrong.
        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }

        /// `path: message`, as the CLI and the log print it.
        public var description: String { "\(path): \(message)" }
    }

    /// The first problems, in document order: at most ``reportedLimit``.
    public var problems: [Problem]
    /// Problems found beyond ``problems`` and not kept.
    public var moreProblems: Int

    /// Keeps the first ``reportedLimit`` of `problems` and counts the rest, plus `moreProblems`.
    public init(problems: [Problem], moreProblems: Int = 0) {
        if problems.count > Self.reportedLimit {
            self.problems = Array(problems.prefix(Self.reportedLimit))
            self.moreProblems = moreProblems + problems.count - Self.reportedLimit
        } else {
            self.problems = problems
            self.moreProblems = moreProblems
        }
    }

    /// Every problem found, kept or not.
    public var totalProblems: Int { problems.count + moreProblems }

    /// "… and N more problems", or nil when every problem is kept.
    public var moreProblemsLine: String? {
        moreProblems > 0 ? "… and \(moreProblems) more problem\(moreProblems == 1 ? "" : "s")" : nil
    }

    /// Each kept problem on its own line, then the count of the rest.
    public var description: String {
        (problems.map(\.description) + [moreProblemsLine].compactMap { $0 }).joined(separator: "\n")
    }
}
