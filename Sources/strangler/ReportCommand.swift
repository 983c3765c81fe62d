import ArgumentParser
import Foundation
import Logging
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerReport
import StranglerStore

/// `strangler report`: the diff report reviewers decide promotions on.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report, per route, how often the service disagreed with legacy, where, and with examples.",
        discussion: """
            Per route: mode, samples, match rate with a 95% confidence interval, mismatches by
            kind, the top differing pointers (count, share, first and last seen) with redacted
            examples, learned noise and accepted differences apart, skipped comparisons by
            reason, latency p50/p99 of both sides, and whether the route's gate holds.

            Formats: text (aligned, coloured on a terminal), markdown (for a pull request),
            json (stable; see docs/report-json.md), html (one self-contained file with charts).

            Examples:
              strangler report
              strangler report --route inventory-read --since 2h
              strangler report --since 2026-11-20T00:00:00Z --format markdown > report.md
              strangler report --format html --output report.html
              strangler report --format json | jq '.routes[] | {id, matchRate}'
            """
    )

    @OptionGroup var source: ReportSource

    @Option(help: "Only this route (repeatable).")
    var route: [String] = []

    @Option(help: "Comparisons since: a duration back from now (30m, 24h, 7d) or an ISO 8601 time.")
    var since = "24h"

    @Option(help: "text, markdown, json or html.")
    var format: ReportFormatOption = .text

    @Option(help: "Write the report to this file instead of standard output.")
    var output: String?

    func validate() throws {
        guard ReportWindow.since(since) != nil else {
            throw ValidationError("--since \"\(since)\" must be a duration like 30m, 24h, 7d or an ISO 8601 time like 2026-11-20T00:00:00Z")
        }
    }

    func run() async throws {
        let (store, table) = try await source.open()
        let start = ContinuousClock.now
        let report: Report
        do {
            report = try await ReportBuilder(store: store, table: table, routesFile: table == nil ? nil : source.routes)
                .build(since: ReportWindow.since(since)!, routeIDs: route.isEmpty ? nil : route)
        } catch {
            printError("cannot build the report from \(store.location): \(error)")
            throw ExitCode(1)
        }
        let colour = format == .text && output == nil && isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        let text = format.value.render(report, colour: colour)
        if let output {
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            } catch {
                printError("cannot write \(output): \(error.localizedDescription)")
                throw ExitCode(1)
            }
            let elapsed = ContinuousClock.now - start
            printError(
                "wrote \(output): \(report.routes.count) routes, \(report.routes.reduce(0) { $0 + $1.samples }) samples, in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow)))"
            )
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

enum ReportFormatOption: String, ExpressibleByArgument, CaseIterable {
    case text, markdown, json, html

    var value: ReportFormat { ReportFormat(rawValue: rawValue)! }
}

/// Where reports and accepted differences read from: the store, and the routes file for modes
/// and gates.
struct ReportSource: ParsableArguments {
    @Option(help: "The diff store (default: $STRANGLER_STORE, else strangler.sqlite beside the routes file).")
    var store: String?

    @Option(
        help:
            "The route table, for modes and gates (optional: without it routes show as unknown; with a postgres:// store, the database's table is read instead)."
    )
    var routes = "routes.json"

    @Option(help: "The folder of numbered .sql migrations (default: ./migrations, or the checkout's).")
    var migrations: String?

    /// Opens the store (which must exist) and reads the table if the file is there.
    func open() async throws -> (any DiffStore, RouteTable?) {
        let path = StoreLocation.path(explicit: store, routes: routes)
        guard PostgresStoreURL.isPostgres(path) || FileManager.default.fileExists(atPath: path) else {
            printError("no diff store at \(StoreLocation.shown(path)); pass --store PATH (or set STRANGLER_STORE), or run the proxy first")
            throw ExitCode(1)
        }
        let opened: any DiffStore
        do {
            var logger = Logger(label: "strangler.store")
            logger.logLevel = .error
            opened = try await StoreLocation.open(path: path, migrations: migrations, logger: logger)
        } catch {
            printError("cannot open the diff store \(StoreLocation.shown(path)): \(error)")
            throw ExitCode(1)
        }
        var table: RouteTable?
        if let shared = opened as? PostgresDiffStore {
            // The shared store holds the table every instance serves; the file is not read.
            do {
                table = try await shared.routeTable().map { try RouteTable.parse($0.content) }
            } catch {
                printError("warning: cannot read the route table in \(shared.location), so modes and gates are unknown: \(error)")
            }
        } else if FileManager.default.fileExists(atPath: routes) {
            do {
                table = try RouteTableLoader.load(path: routes)
            } catch {
                printError("warning: \(routes) does not validate, so modes and gates are unknown:\n" + error.terminalLines.joined(separator: "\n"))
            }
        }
        return (opened, table)
    }
}
