import ArgumentParser
import Foundation
import Logging
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore

/// Where `strangler routes` acts: the file and store, or a running proxy's admin API.
struct ControlOptions: ParsableArguments {
    @Option(help: "The route table to change (with a postgres:// store the table lives in the database, and this is not read).")
    var routes = "routes.json"

    @Option(help: "The diff store with the evidence and the audit trail (default: $STRANGLER_STORE, else strangler.sqlite beside the routes file).")
    var store: String?

    @Option(help: "The folder of numbered .sql migrations (default: ./migrations, or the checkout's).")
    var migrations: String?

    @Option(help: "Act through a running proxy's admin API at this URL instead of editing the file (default: $STRANGLER_ADMIN_URL).")
    var admin: String?

    @Option(help: "With --admin: a file holding the admin token (`name:secret` or the secret). Default: STRANGLER_ADMIN_TOKEN.")
    var tokenFile: String?

    @Option(help: "Who the audit trail records (default: your OS user; through --admin: the token's name).")
    var actor: String?

    @OptionGroup var rules: RouteRuleOptions

    /// An override is recorded with why it was made: `--force` without `--reason` is a usage error.
    static func requireReason(force: Bool, reason: String?) throws {
        if force, reason == nil { throw ValidationError("--force needs --reason TEXT: an override is recorded with why it was made") }
    }

    func validate() throws {
        try rules.validate()
    }

    func makeControls() async throws -> any RouteControls {
        let environment = ProcessInfo.processInfo.environment
        if let admin = admin ?? environment["STRANGLER_ADMIN_URL"].flatMap({ $0.isEmpty ? nil : $0 }) {
            var token: String?
            do {
                token = try AdminAccess.load(file: tokenFile).last?.secret
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            return RemoteRouteControls(base: admin, token: token, actor: actor)
        }
        return LocalRouteControls(controller: try await makeController(), actor: actor ?? OperatingUser.name)
    }

    /// A controller of the table where it lives: the routes file with a SQLite store, the shared
    /// table with a PostgreSQL one (`--routes` is then not read).
    func makeController() async throws -> RouteController {
        let path = StoreLocation.path(explicit: store, routes: routes)
        do {
            var logger = Logger(label: "strangler.store")
            logger.logLevel = .error
            let opened = try await StoreLocation.open(path: path, migrations: migrations, logger: logger)
            if let shared = opened as? PostgresDiffStore {
                return RouteController(authority: SharedRouteAuthority(store: shared), store: shared, configuration: rules.configuration)
            }
            return RouteController(routesPath: routes, store: opened, configuration: rules.configuration)
        } catch {
            printError("cannot open the diff store \(StoreLocation.shown(path)): \(error)")
            throw ExitCode(1)
        }
    }

    /// Runs a change and prints what it did.
    func perform(_ body: (any RouteControls) async throws(ControlFailure) -> OperationDocument) async throws {
        print(RoutesOutput.operation(try await run(body)))
    }

    /// Runs `body` with the controls; a refusal or failure prints why (with the gate's figures)
    /// and exits 1.
    func run<T>(_ body: (any RouteControls) async throws(ControlFailure) -> T) async throws -> T {
        let controls = try await makeControls()
        do {
            let result = try await body(controls)
            await controls.close()
            return result
        } catch {
            await controls.close()
            printError(error.message)
            if let gate = error.gate {
                printError(RoutesOutput.gateLines(gate).map { "  " + $0 }.joined(separator: "\n"))
            }
            if error.name == RouteOperationError.Code.gateRefused.description || error.name == RouteOperationError.Code.legacyStillServing.description
            {
                printError("To override: --force --reason TEXT (recorded in the audit trail).")
            }
            throw ExitCode(1)
        }
    }
}

extension Routes {
    /// `strangler routes list`
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List routes with their predicates, mode, match rate, samples and whether their gate holds.",
            discussion: """
                WHEN shows a route's predicates (host, headers, query, cookies) when it has any;
                MATCH is the share of comparisons in the evidence window that agreed (learned noise
                excluded); GATE says whether a promotion out of shadow or canary would be allowed.

                Examples:
                  strangler routes list
                  strangler routes list --evidence-window 7d
                  strangler routes list --admin http://127.0.0.1:8081
                """
        )
        @OptionGroup var options: ControlOptions

        func run() async throws {
            let stats = try await options.run { controls async throws(ControlFailure) in try await controls.stats(routeID: nil) }
            print(RoutesOutput.list(stats))
        }
    }

    /// `strangler routes show ID`
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one route: its settings, evidence, gate verdict, traffic and recent changes.",
            discussion: """
                Examples:
                  strangler routes show inventory-read
                  strangler routes show inventory-read --evidence-window 1h
                """
        )
        @Argument(help: "The route id.") var id: String
        @OptionGroup var options: ControlOptions

        func run() async throws {
            let (stats, changes) = try await options.run { controls async throws(ControlFailure) in
                (try await controls.stats(routeID: id), try await controls.history(routeID: id, limit: 5))
            }
            guard let status = stats.first else { return }
            print(RoutesOutput.show(status, changes: changes))
        }
    }

    /// `strangler routes set ID --mode M`
    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a route's mode (and canary share), with the same gates as promote.",
            discussion: """
                Moving a route forward into canary or service needs its gate to hold; retiring
                needs legacy to have served it nothing for --legacy-quiet. --force --reason
                overrides either, and the override is recorded.

                Examples:
                  strangler routes set inventory-read --mode shadow --reason "start comparing"
                  strangler routes set inventory-read --mode canary --percent 10
                  strangler routes set inventory-read --mode canary --percent 50 --reason "ramp up"
                  strangler routes set inventory-read --mode legacy --reason "incident 4711"
                  strangler routes set inventory-read --mode service --force --reason "signed off by J. Doe"
                """
        )
        @Argument(help: "The route id.") var id: String
        @Option(help: "legacy, shadow, canary, service or retired.") var mode: RouteMode
        @Option(help: "With --mode canary: the share of requests the service serves, 0-100.") var percent: Double?
        @Option(help: "Why; recorded in the audit trail (required with --force).") var reason: String?
        @Flag(help: "Override a refusing gate or the legacy-traffic rule (needs --reason).") var force = false
        @OptionGroup var options: ControlOptions

        func validate() throws {
            if let percent, !(0...100).contains(percent) { throw ValidationError("--percent must be between 0 and 100") }
            if percent != nil, mode != .canary { throw ValidationError("--percent applies to --mode canary only") }
            try ControlOptions.requireReason(force: force, reason: reason)
        }

        func run() async throws {
            try await options.perform { controls async throws(ControlFailure) in
                try await controls.change(routeID: id, .set(mode, percent: percent), reason: reason, force: force)
            }
        }
    }

    /// `strangler routes promote ID`
    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a route one step along legacy → shadow → canary → service → retired.",
            discussion: """
                Out of shadow or canary the route's gate must hold over the comparisons in the
                evidence window: minSamples, maxMismatchRate (learned noise and accepted differences excluded), no status
                mismatches, maxLatencyRatio. A refusal prints the figures against the gate.
                Into retired, legacy must have served the route nothing for --legacy-quiet.

                Examples:
                  strangler routes promote tracking-by-order --reason "start shadowing"
                  strangler routes promote inventory-read --evidence-window 7d
                  strangler routes promote inventory-read --force --reason "differences reviewed in PR 123"
                """
        )
        @Argument(help: "The route id.") var id: String
        @Option(help: "Why; recorded in the audit trail (required with --force).") var reason: String?
        @Flag(help: "Override a refusing gate or the legacy-traffic rule (needs --reason).") var force = false
        @OptionGroup var options: ControlOptions

        func validate() throws {
            try ControlOptions.requireReason(force: force, reason: reason)
        }

        func run() async throws {
            try await options.perform { controls async throws(ControlFailure) in
                try await controls.change(routeID: id, .promote, reason: reason, force: force)
            }
        }
    }

    /// `strangler routes demote ID`
    struct Demote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a route one step back (retired → service → canary → shadow → legacy). No gate.",
            discussion: """
                Examples:
                  strangler routes demote inventory-read --reason "latency regression"
                """
        )
        @Argument(help: "The route id.") var id: String
        @Option(help: "Why; recorded in the audit trail.") var reason: String?
        @OptionGroup var options: ControlOptions

        func run() async throws {
            try await options.perform { controls async throws(ControlFailure) in
                try await controls.change(routeID: id, .demote, reason: reason, force: false)
            }
        }
    }

    /// `strangler routes rollback [--to VERSION]`
    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore the route table as it was before the latest change, or a given version.",
            discussion: """
                Every table that went live is kept in the store by version, so a rollback restores
                it byte for byte. Without --to it undoes the most recent change in the audit trail
                (run twice, it redoes it). Versions are in `strangler routes history`.

                Examples:
                  strangler routes rollback --reason "mismatches on orders"
                  strangler routes rollback --to 3f9a2c
                """
        )
        @Option(help: "The table version (or a unique prefix) to restore.") var to: String?
        @Option(help: "Why; recorded in the audit trail.") var reason: String?
        @OptionGroup var options: ControlOptions

        func run() async throws {
            try await options.perform { controls async throws(ControlFailure) in
                try await controls.rollback(to: to, reason: reason)
            }
        }
    }

    /// `strangler routes history [ID]`
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the audit trail: when, who, from where, what changed and why; newest first.",
            discussion: """
                Examples:
                  strangler routes history
                  strangler routes history inventory-read --limit 10
                """
        )
        @Argument(help: "Only this route's changes.") var id: String?
        @Option(help: "How many changes to show (1 to \(RouteController.maxHistoryLimit)).") var limit = RouteController.defaultHistoryLimit
        @OptionGroup var options: ControlOptions

        func run() async throws {
            let changes = try await options.run { controls async throws(ControlFailure) in
                try await controls.history(routeID: id, limit: limit)
            }
            print(RoutesOutput.history(changes))
        }
    }
}

extension RouteMode: ExpressibleByArgument {}
