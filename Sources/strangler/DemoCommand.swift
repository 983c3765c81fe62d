import ArgumentParser
import DemoOMS
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerStore

/// `strangler demo`: the legacy OMS, the extracted services, the proxy and the admin listener in
/// one process.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole demo: legacy OMS, extracted services, proxy and admin API in one process.",
        discussion: """
            The proxy routes with the repository's routes.json and reloads it when it changes:
            edit a route's "mode" and the next request follows it. Ctrl-C stops everything.

            Examples:
              strangler demo
              strangler demo --port 18080 --admin-port 18081 --legacy-port 19000 --orders-port 19103
              strangler demo --data-dir /tmp/oms       # keep the demo database elsewhere
              strangler demo --traffic                 # and drive requests, so comparisons pile up
            """
    )

    @Option(help: "The route table the proxy uses (and watches).")
    var routes = "routes.json"

    @Option(help: "Proxy port.")
    var port = 8080
    @Option(help: "Admin API port.")
    var adminPort = 8081
    @Option(help: "Legacy OMS port (the \"legacy\" upstream).")
    var legacyPort = 9000
    @Option(help: "Inventory service port (the \"inventory\" upstream).")
    var inventoryPort = 9101
    @Option(help: "Tracking service port (the \"tracking\" upstream).")
    var trackingPort = 9102
    @Option(help: "Orders service port (the \"orders\" upstream).")
    var ordersPort = 9103
    @Option(help: "Host every demo listener binds.")
    var host = "127.0.0.1"
    @Option(help: "Where the demo OMS keeps its SQLite database.")
    var dataDir = "demo-data"

    @Flag(help: "Drive a realistic mix of requests through the proxy, so comparisons accumulate.")
    var traffic = false

    @Option(help: "Requests per second for --traffic.")
    var trafficRate = 20

    @OptionGroup var proxyOptions: ProxyOptions
    @OptionGroup var adminOptions: AdminOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = logging.makeLogger(label: "strangler.demo")
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)

        let database: OMSDatabase
        do {
            database = try OMSDatabase(path: URL(fileURLWithPath: dataDir).appendingPathComponent("oms.sqlite").path)
        } catch {
            printError("cannot open the demo database in \(dataDir): \(error)")
            throw ExitCode(1)
        }

        let host = self.host
        let addresses: [String: (host: String, port: Int)] = [
            "legacy": (host, legacyPort), "inventory": (host, inventoryPort), "tracking": (host, trackingPort),
            "orders": (host, ordersPort),
        ]
        let transform: @Sendable (RouteTable) -> RouteTable = { $0.replacingUpstreamAddresses(addresses) }
        let table: RouteTable
        do {
            table = transform(try RouteTableLoader.load(path: routes))
        } catch {
            printError("\(routes) is not a valid route table:\n" + error.terminalLines.joined(separator: "\n"))
            throw ExitCode(1)
        }

        let metrics = ProxyMetrics()
        var access = try adminOptions.access()
        let tokenFile = URL(fileURLWithPath: dataDir).appendingPathComponent("admin-token").path
        if access.tokens.isEmpty {
            // The demo makes its own token, kept in the data folder, so the admin API's writes
            // and `strangler routes --admin` work out of the box; reads stay open on loopback.
            do {
                access = AdminAccess(tokens: try Demo.demoToken(at: tokenFile), openReads: true)
            } catch {
                printError("cannot create the demo's admin token at \(tokenFile): \(error)")
                throw ExitCode(1)
            }
        }
        let pipeline: StoreOptions.Pipeline
        do {
            pipeline = try await storeOptions.makePipeline(
                routes: routes,
                defaultStore: URL(fileURLWithPath: dataDir).appendingPathComponent("strangler.sqlite").path,
                metrics: metrics,
                logger: quiet
            )
        } catch {
            printError("cannot open the diff store: \(error)")
            throw ExitCode(1)
        }
        let storePath = pipeline.path
        let banner = StartupBanner(expected: 6) { ports in
            Demo.printBanner(host: host, ports: ports, routes: routes, store: storePath, tokenFile: adminOptions.adminTokenFile ?? tokenFile)
        }
        let application: StranglerApplication
        do {
            application = try StranglerApplication(
                configuration: proxyOptions.configuration(listen: HostPort(host: host, port: port), accessLog: logging.accessLog),
                table: table,
                routesPath: routes,
                store: pipeline.store,
                recorder: pipeline.recorder,
                worker: pipeline.worker,
                metrics: metrics,
                admin: AdminAPI.listener(host: host, port: adminPort, access: access) { await banner.started("admin", $0) },
                controllerConfiguration: adminOptions.rules.configuration,
                monitorConfiguration: adminOptions.monitorConfiguration,
                transform: transform,
                logger: logger,
                quietLogger: quiet
            ) { port in Task { await banner.started("proxy", port) } }
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        let server = application.server
        let upstreams: [any Service] = [
            LegacyOMS.makeApplication(database: database, host: host, port: legacyPort, logger: quiet) {
                await banner.started("legacy", $0)
            },
            ExtractedServices.makeApplication(
                name: "inventory-service",
                router: ExtractedServices.inventoryRouter(database: database),
                host: host,
                port: inventoryPort,
                logger: quiet
            ) { await banner.started("inventory", $0) },
            ExtractedServices.makeApplication(
                name: "tracking-service",
                router: ExtractedServices.trackingRouter(database: database),
                host: host,
                port: trackingPort,
                logger: quiet
            ) { await banner.started("tracking", $0) },
            ExtractedServices.makeApplication(
                name: "orders-service",
                router: ExtractedServices.ordersRouter(database: database),
                host: host,
                port: ordersPort,
                logger: quiet
            ) { await banner.started("orders", $0) },
        ]
        let demoTraffic: [any Service] =
            traffic
            ? [
                DemoTraffic(
                    proxyURL: { [port] in "http://\(host):\(server.localPort ?? port)" },
                    requestsPerSecond: trafficRate,
                    logger: quiet
                )
            ] : []
        try await application.run(before: upstreams, after: demoTraffic, logger: quiet)
        print("demo stopped")
    }

    /// The demo's admin token: read from `path`, or made there (`demo:<64 hex digits>`, mode 0600).
    static func demoToken(at path: String) throws -> [AdminAccess.Token] {
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                withIntermediateDirectories: true
            )
            var generator = SystemRandomNumberGenerator()
            let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
            FileManager.default.createFile(atPath: path, contents: Data("demo:\(secret)\n".utf8), attributes: [.posixPermissions: 0o600])
        }
        return try AdminAccess.load(file: path, environment: [:])
    }

    static func printBanner(host: String, ports: [String: Int], routes: String, store: String, tokenFile: String) {
        let proxy = "http://\(host):\(ports["proxy"] ?? 0)"
        let admin = "http://\(host):\(ports["admin"] ?? 0)"
        print(
            """

            StranglerFig demo is running. Ctrl-C stops it.

              proxy       \(proxy)        ← clients call this
              admin       \(admin)        (GET \(AdminEndpoint.routes.template), \(AdminEndpoint.stats.template), \(AdminEndpoint.changes.template), \(AdminEndpoint.metrics.template), \(AdminEndpoint.openAPI.template))
              admin token \(tokenFile)   (writes: Authorization: Bearer <the part after "demo:">)
              legacy OMS  http://\(host):\(ports["legacy"] ?? 0)
              inventory   http://\(host):\(ports["inventory"] ?? 0)   (extracted service)
              tracking    http://\(host):\(ports["tracking"] ?? 0)   (extracted service)
              orders      http://\(host):\(ports["orders"] ?? 0)   (extracted service; honours dry-run)
              diff store  \(store)   (shadow comparisons)

            Try:
              curl -s \(proxy)/orders/ORD-100001
              curl -si \(proxy)/inventory/SKU-1001 | grep -i -e x-strangler-upstream -e totalOnHand
              curl -s \(admin)/api/routes

            Move a route: set "mode": "service" on inventory-read in \(routes) and save;
            the next request is served by the inventory service, without a restart.
            Or use the controls (gates and audit trail included; README "Operating a migration"):
              export STRANGLER_STORE=\(store)
              strangler routes list
              strangler routes promote tracking-by-order --reason "start comparing"
              strangler routes history

            """
        )
        fflush(nil)  // stdout may be a pipe or file: show the banner now
    }
}

/// Prints the banner once every listener has reported its port.
actor StartupBanner {
    private var ports: [String: Int] = [:]
    private let expected: Int
    private let onReady: @Sendable ([String: Int]) -> Void

    init(expected: Int, onReady: @escaping @Sendable ([String: Int]) -> Void) {
        self.expected = expected
        self.onReady = onReady
    }

    func started(_ name: String, _ port: Int) {
        ports[name] = port
        if ports.count == expected { onReady(ports) }
    }
}
