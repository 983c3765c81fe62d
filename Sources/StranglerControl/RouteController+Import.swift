import Foundation
import StranglerCore
import StranglerStore

extension RouteController {
    /// Replaces the whole table with `content` (`strangler routes import`, and a routes file
    /// pushed into the shared store), validated first and audited route by route.
    ///
    /// Gates do not apply: an import is a reviewed file (from git), not a promotion step, and
    /// the audit trail records what it changed. Content equal to the current table changes
    /// nothing and records nothing.
    /// - Parameters:
    ///   - expected: the table version the caller saw; nil imports over whatever is current.
    ///   - fileVersion: the hash of the routes file pushed, kept by the shared store so that the
    ///     same file is not pushed again.
    public func importTable(
        _ content: Data,
        by requester: Requester,
        expecting expected: String? = nil,
        fileVersion: String? = nil
    ) async throws(RouteOperationError) -> RouteOperationResult {
        let imported: RouteTableDocument
        do {
            imported = try RouteTableDocument(data: content)
        } catch {
            throw RouteOperationError(.invalidTable, "the table to import does not validate; nothing was changed:\n\(error)")
        }
        return try await locked { () async throws(RouteOperationError) -> RouteOperationResult in
            let old = try await authority.read()
            if let expected {
                guard let old else { throw RouteOperationError.conflict(current: nil, expected: expected, in: routesPath) }
                try check(old, expecting: expected)
            }
            let before = old.map { ContentHash.hex(of: $0) }
            let after = ContentHash.hex(of: content)
            guard old != content else {
                return RouteOperationResult(
                    changed: false,
                    summary: "\(routesPath) is already table version \(after); nothing changed",
                    tableVersionBefore: after,
                    tableVersionAfter: after,
                    changes: []
                )
            }
            // The raw comparison the file audit uses: a large table's routes are not parsed twice.
            let differences =
                old.map { RouteTableDocument.differences(from: $0, to: content) }
                ?? RouteTableDocument.differences(from: nil as RouteTableDocument?, to: imported)
            let changes = RouteChange.rows(
                for: differences,
                actor: requester.actor,
                source: requester.source,
                reason: requester.reason ?? "imported",
                from: before,
                to: after
            )
            let stored = try await write(content, replacing: old, changes: changes, fileVersion: fileVersion)
            let routes = changes.compactMap(\.routeID)
            return RouteOperationResult(
                changed: true,
                summary: "imported table \(after) into \(routesPath)"
                    + (routes.isEmpty
                        ? ""
                        : "; changed: " + routes.prefix(20).joined(separator: ", ")
                            + (routes.count > 20 ? " and \(routes.count - 20) more" : "")),
                tableVersionBefore: before ?? "none",
                tableVersionAfter: after,
                changes: stored
            )
        }
    }
}
