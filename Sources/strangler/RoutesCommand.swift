import ArgumentParser
import Foundation
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerReport

/// `strangler routes ...`: work with the route table.
struct Routes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect, check and change the route table: flip, promote, demote and roll back routes.",
        discussion: """
            Changes edit routes.json atomically (validated, written to a temporary file, fsynced,
            renamed) in a stable layout, so git diffs stay one line. A running proxy picks them up
            by hot reload. Every change is recorded in the diff store's audit trail. With
            --admin URL the same commands act through a running proxy's admin API instead.
            With a postgres:// store the table lives in the database: changes commit there by
            compare-and-set, every instance applies them within a second, and `import` and
            `export` move it to and from files.

            `list`, `show` and `validate` print each route's predicates (its `match`) in the
            WHEN column or line, as in `header x-channel: web · query tenant: t-17|t-42`;
            "-" is a route that takes every request on its path. MATCH in `list` is the
            shadow comparisons' match rate.

            Examples:
              strangler routes list
              strangler routes promote inventory-read --reason "gate holds after a week"
              strangler routes set inventory-read --mode canary --percent 10
              strangler routes rollback
              strangler routes history inventory-read
              strangler routes list --admin http://127.0.0.1:8081 --token-file ~/.strangler-token
              strangler routes import routes.json --store postgres://strangler@db:5432/strangler
              strangler routes export --store postgres://strangler@db:5432/strangler > routes.json
            """,
        subcommands: [
            List.self, Show.self, Set.self, Promote.self, Demote.self, Rollback.self, History.self, Validate.self, Import.self, Export.self,
        ]
    )

    /// `strangler routes validate [PATH]`
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a route table; print a summary, or every problem with its JSON path.",
            discussion: """
                Exits 0 when the table is valid, 1 when it is not.

                Examples:
                  strangler routes validate
                  strangler routes validate deploy/routes.json
                  git show HEAD:routes.json > /tmp/r.json && strangler routes validate /tmp/r.json
                """
        )

        @Argument(help: "The route table to check.")
        var path = "routes.json"

        func run() async throws {
            do {
                // As serve reads it: the certificate files of https upstreams must exist and parse.
                let table = try RouteTableLoader.loadForServing(path: path)
                print(
                    "ok: \(TerminalText.escape(path)) (version \(table.version)): \(table.upstreams.count) upstreams, \(table.routes.count) routes, unmatched requests go to \"\(TerminalText.escape(table.defaultUpstream))\""
                )
                print("")
                print(RouteSummary.render(table))
            } catch {
                let count = error.totalProblems
                print("\(TerminalText.escape(path)): \(count) problem\(count == 1 ? "" : "s"); the table would be rejected")
                for line in error.terminalLines {
                    print("  " + line)
                }
                throw ExitCode(1)
            }
        }
    }
}

/// A plain-text table of routes, columns aligned (and escaped, as every ``TextTable`` is).
enum RouteSummary {
    static func render(_ table: RouteTable) -> String {
        var rows = [["ID", "METHODS", "PATH", "WHEN", "MODE", "SERVED BY", "SERVICE", "FALLBACK"]]
        for route in table.routes {
            rows.append([
                route.id, route.methods.isEmpty ? "*" : route.methods.joined(separator: ","), route.path.description,
                route.match.isEmpty ? "-" : route.match.summary, route.mode.rawValue, route.primaryUpstream, route.service ?? "-",
                route.fallback ? "yes" : "no",
            ])
        }
        return TextTable.render(rows)
    }
}
