import StranglerCore

extension RouteTableError {
    /// Each kept problem on its own line, escaped for the terminal, then the count of the rest.
    ///
    /// Problems quote the table's content (an id, a URL), which may hold control characters; each
    /// problem is escaped on its own so that a newline inside a quoted value can't pass for a
    /// line of the report.
    var terminalLines: [String] {
        problems.map { TerminalText.escape($0.description) } + [moreProblemsLine].compactMap { $0 }
    }
}
