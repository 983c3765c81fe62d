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

/// `--admin-tls-cert`, `--admin-tls-key`, `--admin-tls-client-ca`: HTTPS on the admin listener
/// (serve only).
struct AdminTLSOptions: ParsableArguments {
    @Option(
        name: .customLong("admin-tls-cert"),
        help: ArgumentHelp(
            "Serve the admin API over HTTPS with this PEM certificate chain (leaf first); needs --admin-tls-key.",
            discussion: "Reloaded when the file changes and on SIGHUP; open connections keep the certificate they started with.",
            valueName: "file"
        )
    )
    var certificate: String?

    @Option(name: .customLong("admin-tls-key"), help: ArgumentHelp("The admin certificate's private key (unencrypted PEM).", valueName: "file"))
    var key: String?

    @Option(
        name: .customLong("admin-tls-client-ca"),
        help: ArgumentHelp(
            "Require admin clients to present a certificate signed by this CA (PEM); read at start.",
            valueName: "file"
        )
    )
    var clientCA: String?

    func validate() throws {
        switch (certificate, key) {
        case (.some, nil): throw ValidationError("--admin-tls-cert needs --admin-tls-key: the certificate's private key")
        case (nil, .some): throw ValidationError("--admin-tls-key needs --admin-tls-cert: the certificate the key belongs to")
        case (nil, nil) where clientCA != nil:
            throw ValidationError("--admin-tls-client-ca needs --admin-tls-cert and --admin-tls-key: client certificates are checked over TLS")
        default: break
        }
    }

    /// The admin listener's TLS, if asked for.
    var tls: ListenerTLS? {
        guard let certificate, let key else { return nil }
        return ListenerTLS(certificateFile: certificate, keyFile: key, clientCAFile: clientCA)
    }

    /// The flag that names `file`.
    static func flag(_ file: ListenerTLSError.File) -> String {
        switch file {
        case .certificate: "--admin-tls-cert"
        case .key: "--admin-tls-key"
        case .clientCA: "--admin-tls-client-ca"
        }
    }
}
