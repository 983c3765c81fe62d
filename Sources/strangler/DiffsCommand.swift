import ArgumentParser
import Foundation
import StranglerCore
import StranglerReport
import StranglerStore

/// `strangler diffs ...`: accepted differences.
struct Diffs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accept known differences, so they leave the mismatch rate and the gates but stay in reports.",
        discussion: """
            A pointer covers itself and everything under it; `*` stands for any one segment
            (/events/*/ts). Accepting is recorded with the reason and the owner; an acceptance
            can lapse (--until) and be revoked.

            Examples:
              strangler diffs accept tracking-by-order /status --reason "service uses lower case; clients map it (OMS-88)"
              strangler diffs accept inventory-read /available --reason "new field" --until 2026-12-31
              strangler diffs list
              strangler diffs revoke 3
            """,
        subcommands: [Accept.self, List.self, Revoke.self]
    )

    /// `strangler diffs accept ROUTE POINTER --reason TEXT [--until DATE]`
    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept a difference on a route.",
            discussion: """
                Examples:
                  strangler diffs accept order-read /LEGACY_ROW_ID --reason "legacy-only key, not part of the contract"
                  strangler diffs accept order-read "/items/*/unitPrice" --reason "rounding fixed in OMS-91" --until 2026-12-01
                """
        )
        @Argument(help: "The route id.") var route: String
        @Argument(help: "A JSON pointer (RFC 6901); `*` for any one segment. Covers everything under it.") var pointer: String
        @Option(help: "Why the difference is acceptable (required; shown in reports).") var reason: String
        @Option(help: "When the acceptance lapses: a date (2026-12-31) or ISO 8601 time.") var until: String?
        @Option(help: "Who accepts (default: your OS user).") var owner: String?
        @OptionGroup var source: ReportSource

        func validate() throws {
            guard pointer.hasPrefix("/") else {
                throw ValidationError("\"\(TerminalText.escape(pointer))\" is not a JSON pointer; it starts with \"/\", like /status or /items/*/qty")
            }
            guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--reason must say why") }
            if let until, ReportWindow.since(until).map({ $0 > Date() }) != true || DurationText.seconds(until) != nil {
                throw ValidationError("--until \"\(TerminalText.escape(until))\" must be a future date like 2026-12-31 or an ISO 8601 time")
            }
        }

        func run() async throws {
            let (store, table) = try await source.open()
            if let table, !table.routes.contains(where: { $0.id == route }) {
                printError(
                    "no route \"\(TerminalText.escape(route))\" in \(TerminalText.escape(store is PostgresDiffStore ? "the shared route table" : source.routes)); known: \(TerminalText.escape(table.routes.map(\.id).joined(separator: ", ")))"
                )
                throw ExitCode(1)
            }
            let id = try await store.accept(
                routeID: route,
                pointer: pointer,
                reason: reason,
                owner: owner ?? OperatingUser.name,
                until: until.flatMap { ReportWindow.since($0) }
            )
            let covered = try await store.coveredCount(routeID: route, since: Date().addingTimeInterval(-86400), pattern: pointer)
            print(
                "accepted #\(id): \(TerminalText.escape(route)) \(TerminalText.escape(pointer)) — covers \(covered) differences of the last 24h; they no longer count as mismatches"
            )
        }
    }

    /// `strangler diffs list`
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List accepted differences.",
            discussion: """
                Examples:
                  strangler diffs list
                  strangler diffs list --route order-read --all
                """
        )
        @Option(help: "Only this route.") var route: String?
        @Flag(help: "Include lapsed and revoked ones.") var all = false
        @OptionGroup var source: ReportSource

        func run() async throws {
            let (store, _) = try await source.open()
            let items = try await store.acceptedDifferences(routeID: route, includeInactive: all)
            guard !items.isEmpty else {
                print("no accepted differences")
                return
            }
            var rows = [["ID", "ROUTE", "POINTER", "OWNER", "ACCEPTED", "UNTIL", "STATE", "REASON"]]
            for item in items {
                let state = item.revokedAt.map { _ in "revoked by \(item.revokedBy ?? "?")" } ?? (item.isActive() ? "active" : "lapsed")
                rows.append([
                    "\(item.id)", item.routeID, item.pointer, item.owner, ReportFormatting.time(item.acceptedAt),
                    item.until.map(ReportFormatting.time) ?? "-", state, item.reason,
                ])
            }
            print(TextTable.render(rows))
        }
    }

    /// `strangler diffs revoke ID`
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an accepted difference: it counts as a mismatch again.",
            discussion: """
                Examples:
                  strangler diffs revoke 3
                """
        )
        @Argument(help: "The id from `strangler diffs list`.") var id: Int64
        @Option(help: "Who revokes (default: your OS user).") var owner: String?
        @OptionGroup var source: ReportSource

        func run() async throws {
            let (store, _) = try await source.open()
            guard try await store.revokeAccepted(id: id, by: owner ?? OperatingUser.name) else {
                printError("no active accepted difference #\(id); see `strangler diffs list --all`")
                throw ExitCode(1)
            }
            print("revoked #\(id)")
        }
    }
}
