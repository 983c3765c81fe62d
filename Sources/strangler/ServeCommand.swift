import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore

/// `strangler serve`: the proxy and its admin listener.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the proxy in front of the legacy system, routed by routes.json.",
        discussion: """
            The route table is reloaded without a restart when the file changes and on SIGHUP.
            A table that fails validation is rejected whole; the live one stays and the error is
            logged and shown at GET /api/routes on the admin listener.

            Examples:
              strangler serve
              strangler serve --routes /etc/strangler/routes.json --listen 0.0.0.0:8080
              strangler serve --threads 1 --no-access-log        # how the benchmarks run it
              strangler serve --event-loop-slice default          # keep the kernel's scheduling slice
              strangler serve --client-header-timeout 10s --keepalive-timeout 30s --max-client-connections 20000
              kill -HUP $(pidof strangler)                      # force a reload
              strangler serve --store postgres://strangler@db:5432/strangler --instance-id proxy-a
              strangler serve --store postgres://strangler@db:5432/strangler --routes routes.json   # git stays the source
              strangler serve --admin-listen 0.0.0.0:8081 --admin-token-file /etc/strangler/tokens
              strangler serve --listen 0.0.0.0:8443 --tls-cert fullchain.pem --tls-key privkey.pem
              strangler serve --admin-tls-cert admin.pem --admin-tls-key admin.key \\
                --admin-tls-client-ca operators-ca.pem     # admin clients need a certificate

            TLS certificates are reloaded without a restart when their files change (checked \
            every 2 s) and on SIGHUP; a certificate that fails to load is logged, and the one in use stays.

            Route changes made through `strangler routes`, the admin API, by hand in the file or
            by a canary's auto-demote are recorded in the diff store's audit trail.
            """
    )

    @Option(
        help: ArgumentHelp(
            "The route table file (default: routes.json; with a postgres:// store, none: the database's table is served).",
            discussion: """
                With a postgres:// store and --routes, the file is pushed into the database's table whenever it \
                changes (validated, audited as a file change, by compare-and-set), and every instance serves the \
                database's table.
                """
        )
    )
    var routes: String?

    @Option(
        help: ArgumentHelp(
            "With a postgres:// store: how often the database's table version is read, besides its change notifications.",
            valueName: "duration"
        )
    )
    var routePollInterval = DurationArgument(.seconds(2), text: "2s")

    @Option(
        help: """
            With a postgres:// store: where the last table served is kept, so a restart while the database is away still \
            serves (default: strangler-routes.snapshot.json beside the routes file, or in the working folder).
            """
    )
    var routeSnapshot: String?

    @Option(help: "Address the proxy listens on.")
    var listen = HostPort(host: "127.0.0.1", port: 8080)

    @Option(help: "Address of the admin listener (health, metrics, route table).")
    var adminListen = HostPort(host: "127.0.0.1", port: 8081)

    @OptionGroup var proxyOptions: ProxyOptions
    @OptionGroup var tlsOptions: ListenerTLSOptions
    @OptionGroup var adminOptions: AdminOptions
    @OptionGroup var adminTLSOptions: AdminTLSOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        try proxyOptions.validate()
        try tlsOptions.validate()
        try adminOptions.validate()
        try adminTLSOptions.validate()
        guard routePollInterval.amount >= .milliseconds(100) else {
            throw ValidationError("--route-poll-interval must be at least 100ms, got \(routePollInterval.text)")
        }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "strangler")
        let metrics = ProxyMetrics()
        // Certificates are checked before anything opens: a bad file stops serve with the flag
        // that named it, not as a listener failing to start after the store did.
        var configuration = proxyOptions.configuration(listen: listen, accessLog: logging.accessLog)
        configuration.tls = tlsOptions.tls
        let adminTLS = adminTLSOptions.tls.map { ListenerTLSReloader(tls: $0, listener: "admin", logger: logger, metrics: metrics) }
        do {
            if let tls = configuration.tls {
                _ = try ListenerCertificate(loading: tls)
            }
        } catch {
            printError(Self.message(error, listener: "proxy", flag: ListenerTLSOptions.flag))
            throw ExitCode(1)
        }
        do {
            try adminTLS?.load()
        } catch {
            printError(Self.message(error, listener: "admin", flag: AdminTLSOptions.flag))
            throw ExitCode(1)
        }
        let routesFile = routes ?? "routes.json"
        let sharedStore = PostgresStoreURL.isPostgres(storeOptions.storePath(routes: routesFile))
        var table: RouteTable?
        if !sharedStore {
            do {
                table = try RouteTableLoader.loadForServing(path: routesFile)
            } catch {
                printError("\(routesFile) is not a valid route table:\n" + error.terminalLines.joined(separator: "\n"))
                throw ExitCode(1)
            }
        }
        let access = try adminOptions.access()
        let pipeline: StoreOptions.Pipeline
        do {
            pipeline = try await storeOptions.makePipeline(routes: routesFile, metrics: metrics, logger: logger)
        } catch {
            printError("cannot open the diff store: \(error)")
            throw ExitCode(1)
        }
        var shared: ControlPlane.Shared?
        if let store = pipeline.store as? PostgresDiffStore {
            let snapshot = routeSnapshot ?? Self.besideRoutes(routesFile, "strangler-routes.snapshot.json")
            do {
                let start = try await SharedRouteStart.load(store: store, routesFile: routes, snapshotPath: snapshot, logger: logger)
                logger.info("serving the shared route table", metadata: ["from": "\(start.origin)", "version": "\(start.table.version)"])
                table = start.table
            } catch {
                printError(error.description)
                await StoreLocation.close(store)
                throw ExitCode(1)
            }
            shared = ControlPlane.Shared(
                store: store,
                routesFile: routes,
                follower: .init(snapshotPath: snapshot, pollInterval: .nanoseconds(routePollInterval.amount.nanoseconds))
            )
        }
        guard let table else { throw ExitCode(1) }
        let application: StranglerApplication
        do {
            application = try StranglerApplication(
                configuration: configuration,
                table: table,
                routesPath: routesFile,
                shared: shared,
                store: pipeline.store,
                leadership: pipeline.leadership,
                recorder: pipeline.recorder,
                worker: pipeline.worker,
                metrics: metrics,
                admin: AdminAPI.listener(host: adminListen.host, port: adminListen.port, access: access, tls: adminTLS),
                controllerConfiguration: adminOptions.rules.configuration,
                monitorConfiguration: adminOptions.monitorConfiguration,
                logger: logger,
                adminTLS: adminTLS
            )
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        try await application.run(logger: logger)
        await StoreLocation.close(pipeline.store)
    }

    /// Why a listener can't serve TLS, with the flag that named the file and what to do.
    static func message(_ error: ListenerTLSError, listener: String, flag: (ListenerTLSError.File) -> String) -> String {
        "cannot serve TLS on the \(listener) listener: \(flag(error.file)) \(error.path) \(error.reason).\n"
            + "To fix: \(error.remedy)."
    }

    /// A file in the routes file's folder.
    static func besideRoutes(_ routes: String, _ name: String) -> String {
        URL(fileURLWithPath: routes).deletingLastPathComponent().appendingPathComponent(name).path
    }
}

/// `--tls-cert`, `--tls-key`: HTTPS on the proxy listener (serve only).
struct ListenerTLSOptions: ParsableArguments {
    @Option(
        name: .customLong("tls-cert"),
        help: ArgumentHelp(
            "Serve the proxy over HTTPS with this PEM certificate chain (leaf first); needs --tls-key.",
            discussion: """
                TLS 1.2 or later, ALPN http/1.1; upstreams get X-Forwarded-Proto: https. The files are \
                reloaded when they change and on SIGHUP; open connections keep the certificate they started with.
                """,
            valueName: "file"
        )
    )
    var certificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The certificate's private key (unencrypted PEM).", valueName: "file"))
    var key: String?

    func validate() throws {
        switch (certificate, key) {
        case (.some, nil): throw ValidationError("--tls-cert needs --tls-key: the certificate's private key")
        case (nil, .some): throw ValidationError("--tls-key needs --tls-cert: the certificate the key belongs to")
        default: break
        }
    }

    /// The proxy listener's TLS, if asked for.
    var tls: ListenerTLS? {
        guard let certificate, let key else { return nil }
        return ListenerTLS(certificateFile: certificate, keyFile: key)
    }

    /// The flag that names `file`.
    static func flag(_ file: ListenerTLSError.File) -> String {
        switch file {
        case .certificate: "--tls-cert"
        case .key: "--tls-key"
        case .clientCA: "--tls-client-ca"
        }
    }
}

/// Data-plane options shared by `serve` and `demo`.
struct ProxyOptions: ParsableArguments {
    @Option(help: "Event-loop threads (default: the number of cores). Each has its own upstream pools.")
    var threads: Int = System.coreCount

    @Option(help: "Largest request head in bytes before the client gets 431.")
    var maxHeaderBytes = 32 * 1024

    @Option(help: "Largest request body in bytes before the client gets 413.")
    var maxBodyBytes = 10 * 1024 * 1024

    @Option(help: "Largest request or response body captured for a shadow comparison; larger ones are skipped and counted.")
    var maxCaptureBytes = 1024 * 1024

    @Option(help: "A peer whose X-Forwarded-* headers are trusted and extended (repeatable).")
    var trustedProxy: [String] = []

    @Option(
        help: ArgumentHelp(
            "A client's whole request head must arrive within this (like nginx's client_header_timeout); 408 otherwise.",
            discussion: "Counted from the connection's start, or from the first byte of a later request. A deadline, not an idle timer.",
            valueName: "duration"
        )
    )
    var clientHeaderTimeout = DurationArgument(.seconds(60), text: "60s")

    @Option(
        help: ArgumentHelp(
            "Longest a client may send no request body bytes while the proxy reads them (like client_body_timeout); 408 otherwise.",
            valueName: "duration"
        )
    )
    var clientBodyTimeout = DurationArgument(.seconds(60), text: "60s")

    @Option(
        help: ArgumentHelp(
            "Longest a client may take no response bytes while some wait to be written (like send_timeout); then it is closed.",
            valueName: "duration"
        )
    )
    var clientSendTimeout = DurationArgument(.seconds(60), text: "60s")

    @Option(help: ArgumentHelp("How long an idle client connection stays open between requests (like keepalive_timeout).", valueName: "duration"))
    var keepaliveTimeout = DurationArgument(.seconds(75), text: "75s")

    @Option(
        help: ArgumentHelp(
            "Most client connections open at once. At the cap the longest-idle connection is closed to make room, or the new one is refused.",
            discussion: "Lowered to fit the open-file limit if that is too low (a warning names the limit to raise)."
        )
    )
    var maxClientConnections = 10_000

    @Option(
        help: ArgumentHelp(
            "What to do with a request path that servers read in different ways.",
            discussion: """
                Requests are routed on the normal form of their path (escapes of letters, digits and -._~ \
                decoded, dot segments resolved, // merged); the path still goes upstream as the client sent \
                it. Some spellings have no one normal form, because servers disagree on them: an encoded "/" \
                (%2F), a "\\" or %5C, a dot segment spelled with %2E, a ".." after "//", a ";" parameter. \
                reject answers 400 to them; forward-when-routes-agree routes such a path under each reading \
                and forwards it only if every reading picks the same route, else answers 400.
                """
        )
    )
    var ambiguousPaths: AmbiguousPathPolicy = .reject

    @Option(
        help: ArgumentHelp(
            "The scheduling slice each event loop asks Linux for (100us to 100ms), or \"default\" for the kernel's.",
            discussion: """
                Linux 6.12 and later let a thread ask for a short slice; a thread with a short slice \
                that wakes preempts one with a longer slice at once. With 100us an event loop runs \
                ahead of the proxy's own background work on its core (route table reloads and \
                audits, comparisons, store writes), so that work does not add milliseconds to \
                requests. Older kernels refuse it, and the log says so.
                """,
            valueName: "duration|default"
        )
    )
    var eventLoopSlice = SliceArgument.slice(DurationArgument(EventLoopSlice.standard, text: "100us"))

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard maxHeaderBytes >= 1024 else { throw ValidationError("--max-header-bytes must be at least 1024") }
        guard maxBodyBytes >= 0 else { throw ValidationError("--max-body-bytes must not be negative") }
        guard maxClientConnections >= 1 else { throw ValidationError("--max-client-connections must be at least 1") }
        if case .slice(let slice) = eventLoopSlice, slice.amount < EventLoopSlice.standard || slice.amount > EventLoopSlice.longest {
            throw ValidationError("--event-loop-slice must be from 100us to 100ms, or \"default\"; got \(slice.text)")
        }
    }

    func configuration(listen: HostPort, accessLog: Bool) -> ProxyConfiguration {
        ProxyConfiguration(
            host: listen.host,
            port: listen.port,
            threads: threads,
            maxHeaderBytes: maxHeaderBytes,
            maxBodyBytes: maxBodyBytes,
            trustedProxies: Set(trustedProxy),
            accessLog: accessLog,
            maxCaptureBytes: maxCaptureBytes,
            clientHeaderTimeout: clientHeaderTimeout.amount,
            clientBodyTimeout: clientBodyTimeout.amount,
            clientSendTimeout: clientSendTimeout.amount,
            keepAliveTimeout: keepaliveTimeout.amount,
            maxClientConnections: maxClientConnections,
            ambiguousPaths: ambiguousPaths,
            eventLoopSlice: eventLoopSlice.amount
        )
    }
}

extension AmbiguousPathPolicy: ExpressibleByArgument {}

/// `--event-loop-slice`: a duration, or `default` for the kernel's own slice.
enum SliceArgument: ExpressibleByArgument, CustomStringConvertible, Sendable {
    case slice(DurationArgument)
    case kernelDefault

    init?(argument: String) {
        if argument == "default" {
            self = .kernelDefault
        } else if let duration = DurationArgument(argument: argument) {
            self = .slice(duration)
        } else {
            return nil
        }
    }

    var amount: TimeAmount? {
        if case .slice(let duration) = self { duration.amount } else { nil }
    }

    var description: String {
        switch self {
        case .slice(let duration): duration.text
        case .kernelDefault: "default"
        }
    }
}

/// Writes `message` to standard error, escaped for the terminal line by line: error messages
/// quote ids, paths and answers from elsewhere. Its own line breaks are kept.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((TerminalText.escapeKeepingLines(message) + "\n").utf8))
}
