import ArgumentParser
import Foundation
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy

/// Admin access and route-control options shared by `serve` and `demo`.
struct AdminOptions: ParsableArguments {
    @Option(help: "File of admin API tokens, one `name:secret` per line (or set STRANGLER_ADMIN_TOKEN). Writes need one.")
    var adminTokenFile: String?

    @Flag(help: "Serve the admin API's reads (/api/...) without a token, even when tokens are configured.")
    var adminOpenReads = false

    @OptionGroup var rules: RouteRuleOptions

    @Option(help: "Sliding window a canary's service error and mismatch rates are judged over for auto-demote (e.g. 60s).")
    var canaryWindow = "60s"

    @Option(help: "Service answers needed in the canary window before auto-demote judges a rate.")
    var canaryMinRequests = 20

    func validate() throws {
        guard let seconds = DurationText.seconds(canaryWindow), seconds >= 1 else {
            throw ValidationError("--canary-window \"\(canaryWindow)\" must be a duration like 60s or 5m")
        }
        _ = seconds
        try rules.validate()
    }

    /// Tokens and read access; exits with a clear message when the token file is unusable.
    func access() throws -> AdminAccess {
        do {
            return AdminAccess(tokens: try AdminAccess.load(file: adminTokenFile), openReads: adminOpenReads)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }

    var monitorConfiguration: CanaryMonitor.Configuration {
        CanaryMonitor.Configuration(
            window: .milliseconds(Int64((DurationText.seconds(canaryWindow) ?? 60) * 1000)),
            minRequests: canaryMinRequests
        )
    }
}

/// The windows of the promotion rules, shared by `serve`, `demo` and `routes`.
struct RouteRuleOptions: ParsableArguments {
    @Option(help: "How far back comparisons count as evidence for a gate (e.g. 24h, 90m, 7d).")
    var evidenceWindow = "24h"

    @Option(help: "How long legacy must have served a route nothing before it may be retired.")
    var legacyQuiet = "24h"

    func validate() throws {
        for (name, value) in [("--evidence-window", evidenceWindow), ("--legacy-quiet", legacyQuiet)] where DurationText.seconds(value) == nil {
            throw ValidationError("\(name) \"\(value)\" must be a duration like 30s, 90m, 24h or 7d")
        }
    }

    var configuration: RouteController.Configuration {
        RouteController.Configuration(
            evidenceWindow: DurationText.seconds(evidenceWindow) ?? 86400,
            legacyQuietWindow: DurationText.seconds(legacyQuiet) ?? 86400
        )
    }
}
