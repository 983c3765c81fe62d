/// Everything wrong with a route table, each problem with the JSON path it is about.
///
/// A table with any problem is rejected whole; the proxy keeps serving the previous one.
public struct RouteTableError: Error, Sendable, CustomStringConvertible {
    /// One problem in the table.
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        /// JSON path of the offending value, e.g. `routes[3].service`; `$` for the whole document.
        public var path: String
        /// What is wrong, and where possible what would be right.
        public var message: String

        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }

        public var description: String { "\(path): \(message)" }
    }

    /// The problems, in document order.
    public var problems: [Problem]

    public init(problems: [Problem]) {
        self.problems = problems
    }

    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
