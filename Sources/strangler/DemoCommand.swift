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
              strangler demo --tls                     # https, with a local CA; then:
              curl --cacert demo-data/demo-ca.pem https://localhost:8080/orders/ORD-100001
              strangler demo --postgres postgres://strangler@127.0.0.1/demo --traffic
                                                 # two proxies, one database

            With --postgres URL two proxy instances run, demo-a (--port,
            --admin-port) and demo-b (--port-b, --admin-port-b), as several
            `strangler serve --store URL` share one database: the route table
            and the diff store live in it. An empty database gets routes.json
            as its first table; after that the database's table is served and
            routes.json is not watched. Flip a route through demo-a's admin
            API, and demo-b serves it within a second.

            With --tls the proxy listens for https (both proxies with --postgres),
            with a certificate for localhost, 127.0.0.1 and ::1 (and --host)
            signed by a local CA. Both are made in the data folder on the first
            run and reused after, so trust demo-ca.pem once (curl --cacert, or
            a browser's certificate settings). The CA's own key is not kept: it
            signs the demo's certificate and nothing else. The admin API and
            the upstreams stay plain http.
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

    @Flag(help: "Serve the proxy over https, with a certificate from a local CA made in the data folder (demo-ca.pem).")
    var tls = false

    @Option(
        help: ArgumentHelp(
            "Run two proxy instances sharing this PostgreSQL database (postgres://USER@HOST:PORT/DB) for the route table and the diff store.",
            valueName: "url"
        )
    )
    var postgres: String?

    @Option(help: "With --postgres: the second instance's proxy port.")
    var portB = 8082
    @Option(help: "With --postgres: the second instance's admin API port.")
    var adminPortB = 8083

    @OptionGroup var proxyOptions: ProxyOptions
    @OptionGroup var adminOptions: AdminOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard let postgres else { return }
        guard PostgresStoreURL.isPostgres(postgres) else {
            throw ValidationError("--postgres takes a postgres://USER@HOST:PORT/DATABASE URL, got \(TerminalText.escape(postgres))")
        }
        if storeOptions.store != nil {
            throw ValidationError("--postgres is the demo's diff store too; drop --store")
        }
        if storeOptions.instanceID != nil {
            throw ValidationError("with --postgres the instances are demo-a and demo-b; drop --instance-id")
        }
        let ports = [port, adminPort, portB, adminPortB].filter { $0 != 0 }
        if Set(ports).count != ports.count {
            throw ValidationError("--port, --admin-port, --port-b and --admin-port-b must differ")
        }
    }

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

        let demoTLS: DemoTLS?
        do {
            demoTLS = tls ? try DemoTLS.prepare(dataDirectory: dataDir, host: host) : nil
        } catch {
            printError(error.description)
            throw ExitCode(1)
        }

        let host = self.host
        let addresses: [String: (host: String, port: Int)] = [
            "legacy": (host, legacyPort), "inventory": (host, inventoryPort), "tracking": (host, trackingPort),
            "orders": (host, ordersPort),
        ]
        let transform: @Sendable (RouteTable) -> RouteTable = { $0.replacingUpstreamAddresses(addresses) }
        // With --postgres the table is the database's: routes.json is read only to fill an empty one.
        var fileTable: RouteTable?
        if postgres == nil {
            do {
                fileTable = transform(try RouteTableLoader.load(path: routes))
            } catch {
                printError("\(routes) is not a valid route table:\n" + error.terminalLines.joined(separator: "\n"))
                throw ExitCode(1)
            }
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
        let upstreams = { (banner: StartupBanner) -> [any Service] in
            [
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
        }
        let tokenShown = adminOptions.adminTokenFile ?? tokenFile
        if let postgres {
            try await runShared(
                postgres: postgres,
                tls: demoTLS,
                transform: transform,
                access: access,
                tokenFile: tokenShown,
                upstreams: upstreams,
                logger: logger,
                quiet: quiet
            )
            return
        }
        guard let table = fileTable else { throw ExitCode(1) }

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
            Demo.printBanner(host: host, ports: ports, routes: routes, store: storePath, tokenFile: tokenShown, tls: demoTLS)
        }
        var configuration = proxyOptions.configuration(listen: HostPort(host: host, port: port), accessLog: logging.accessLog)
        configuration.tls = demoTLS?.listener
        let application: StranglerApplication
        do {
            application = try StranglerApplication(
                configuration: configuration,
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
        let demoTraffic: [any Service] =
            traffic
            ? [
                DemoTraffic(
                    proxyURLs: { [port] in [DemoTLS.trafficURL(host: host, port: server.localPort ?? port, tls: demoTLS != nil)] },
                    requestsPerSecond: trafficRate,
                    tls: demoTLS?.clientConfiguration,
                    logger: quiet
                )
            ] : []
        try await application.run(before: upstreams(banner), after: demoTraffic, logger: quiet)
        print("demo stopped")
    }

    // MARK: - Two instances sharing PostgreSQL

    /// `--postgres`: two proxies, demo-a and demo-b, each with its own connections to the
    /// database, as two `strangler serve --store URL` processes would have, serving the
    /// database's route table and recording into its diff store; the upstreams and the traffic
    /// are shared.
    private func runShared(
        postgres: String,
        tls: DemoTLS?,
        transform: @escaping @Sendable (RouteTable) -> RouteTable,
        access: AdminAccess,
        tokenFile: String,
        upstreams: (StartupBanner) -> [any Service],
        logger: Logger,
        quiet: Logger
    ) async throws {
        let instances = [
            (id: "demo-a", port: port, adminPort: adminPort),
            (id: "demo-b", port: portB, adminPort: adminPortB),
        ]
        let metrics = instances.map { _ in ProxyMetrics() }
        var pipelines: [StoreOptions.Pipeline] = []
        var stores: [PostgresDiffStore] = []
        func closeStores() async {
            for store in stores { await store.close() }
        }
        for (index, instance) in instances.enumerated() {
            var options = storeOptions
            options.store = postgres
            options.instanceID = instance.id
            do {
                let pipeline = try await options.makePipeline(routes: routes, metrics: metrics[index], logger: quiet)
                pipelines.append(pipeline)
                if let store = pipeline.store as? PostgresDiffStore { stores.append(store) }
            } catch {
                printError("cannot open the shared store \(StoreLocation.shown(postgres)): \(error)")
                await closeStores()
                throw ExitCode(1)
            }
        }
        guard stores.count == instances.count else {
            await closeStores()
            throw ExitCode(1)
        }
        let location = stores[0].location

        // An empty database gets routes.json as its first table, as `strangler routes import`
        // would load it; a table already there (changed through the API, say) is kept.
        let fromFile: String?
        do {
            fromFile = try await Demo.importIfEmpty(routes: routes, into: stores[0])
        } catch {
            printError(error.description)
            await closeStores()
            throw ExitCode(1)
        }

        let banner = StartupBanner(expected: 4 + 2 * instances.count) { [routes, host] ports in
            Demo.printSharedBanner(
                host: host,
                ports: ports,
                instances: instances.map(\.id),
                store: location,
                routes: routes,
                imported: fromFile,
                tokenFile: tokenFile,
                tls: tls
            )
        }
        let upstreamServices = upstreams(banner)
        var applications: [StranglerApplication] = []
        for (index, instance) in instances.enumerated() {
            let snapshot = URL(fileURLWithPath: dataDir).appendingPathComponent("routes-snapshot-\(instance.id).json").path
            let start: SharedRouteStart
            do {
                start = try await SharedRouteStart.load(store: stores[index], routesFile: nil, snapshotPath: snapshot, logger: quiet)
            } catch {
                printError(error.description)
                await closeStores()
                throw ExitCode(1)
            }
            var instanceLogger = logger
            instanceLogger[metadataKey: "instance"] = "\(instance.id)"
            let pipeline = pipelines[index]
            var configuration = proxyOptions.configuration(listen: HostPort(host: host, port: instance.port), accessLog: logging.accessLog)
            configuration.tls = tls?.listener
            do {
                applications.append(
                    try StranglerApplication(
                        configuration: configuration,
                        table: transform(start.table),
                        routesPath: routes,
                        shared: ControlPlane.Shared(store: stores[index], routesFile: nil, follower: .init(snapshotPath: snapshot)),
                        store: pipeline.store,
                        leadership: pipeline.leadership,
                        recorder: pipeline.recorder,
                        worker: pipeline.worker,
                        metrics: metrics[index],
                        admin: AdminAPI.listener(host: host, port: instance.adminPort, access: access) {
                            await banner.started("admin \(instance.id)", $0)
                        },
                        controllerConfiguration: adminOptions.rules.configuration,
                        monitorConfiguration: adminOptions.monitorConfiguration,
                        transform: transform,
                        logger: instanceLogger,
                        quietLogger: quiet
                    ) { port in Task { await banner.started("proxy \(instance.id)", port) } }
                )
            } catch {
                printError("\(error)")
                await closeStores()
                throw ExitCode(1)
            }
        }

        let servers = applications.map(\.server)
        let host = self.host
        let demoTraffic: [any Service] =
            traffic
            ? [
                DemoTraffic(
                    proxyURLs: { zip(servers, instances).map { DemoTLS.trafficURL(host: host, port: $0.localPort ?? $1.port, tls: tls != nil) } },
                    requestsPerSecond: trafficRate,
                    tls: tls?.clientConfiguration,
                    logger: quiet
                )
            ] : []
        // Each instance runs as its own service group, as in its own process; both stop on
        // SIGINT or SIGTERM. demo-a also runs the upstreams (stopped after its proxy drained)
        // and the traffic (stopped first).
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, application) in applications.enumerated() {
                    group.addTask {
                        if index == 0 {
                            try await application.run(before: upstreamServices, after: demoTraffic, logger: quiet)
                        } else {
                            try await application.run(logger: quiet)
                        }
                    }
                }
                do {
                    try await group.waitForAll()
                } catch {
                    group.cancelAll()
                    throw error
                }
            }
        } catch {
            await closeStores()
            throw error
        }
        await closeStores()
        print("demo stopped")
    }

    /// Loads `routes` into the shared table if the database holds none.
    /// - Returns: the file imported, or nil when the database already had a table.
    static func importIfEmpty(routes: String, into store: PostgresDiffStore) async throws(DemoFailure) -> String? {
        do {
            guard try await store.routeTable() == nil else { return nil }
        } catch {
            throw DemoFailure(description: "cannot read the route table from \(store.location): \(error)")
        }
        let content: Data
        do {
            content = try RouteTableLoader.read(path: routes)
        } catch {
            throw DemoFailure(description: "cannot read \(routes): \(error.terminalLines.joined(separator: "\n"))")
        }
        let controller = RouteController(authority: SharedRouteAuthority(store: store), store: store)
        do {
            _ = try await controller.importTable(
                content,
                by: .init(actor: OperatingUser.name, source: .cli, reason: "strangler demo: the first table, from \(routes)")
            )
        } catch {
            // Another demo may have loaded one meanwhile: that table is served.
            if (try? await store.routeTable()) != nil { return nil }
            throw DemoFailure(description: "cannot load \(routes) into \(store.location): \(error.message)")
        }
        return routes
    }

    static func printSharedBanner(
        host: String,
        ports: [String: Int],
        instances: [String],
        store: String,
        routes: String,
        imported: String?,
        tokenFile: String,
        tls: DemoTLS? = nil
    ) {
        let proxy = { (id: String) in DemoTLS.bannerURL(host: host, port: ports["proxy \(id)"] ?? 0, tls: tls != nil) }
        let curl = tls?.curl ?? "curl"
        let admin = { (id: String) in "http://\(host):\(ports["admin \(id)"] ?? 0)" }
        let a = instances[0]
        let b = instances[1]
        let table =
            imported.map { "loaded from \($0) into the empty database" }
            ?? "the one already in the database (\(routes) is not read: `strangler routes import \(routes) --store URL` replaces it)"
        let pad = { (text: String) in text.padding(toLength: max(text.count, 28), withPad: " ", startingAt: 0) }
        print(
            """

            StranglerFig demo is running with two proxies sharing PostgreSQL. Ctrl-C stops it.

              \(a) proxy  \(pad(proxy(a)))admin \(admin(a))
              \(b) proxy  \(pad(proxy(b)))admin \(admin(b))
              shared store  \(store)   (the route table and the diff store)
              route table   \(table)
              admin token   \(tokenFile)   (writes: Authorization: Bearer <the part after "demo:">)\(tls.map { "\n  local CA      \($0.caLine)" } ?? "")
              legacy OMS    http://\(host):\(ports["legacy"] ?? 0)
              inventory     http://\(host):\(ports["inventory"] ?? 0)   tracking http://\(host):\(ports["tracking"] ?? 0)   orders http://\(host):\(ports["orders"] ?? 0)

            Try: flip a route through \(a)'s admin API and watch \(b) serve it.\(tls.map { "\n  \($0.curl) \(proxy(a))/orders/ORD-100001" } ?? "")
              \(curl) -si \(proxy(b))/tracking/UP900007919 | grep -i x-strangler-upstream      # tracking (the service)
              TOKEN=$(cut -d: -f2- \(tokenFile))
              curl -s -X POST \(admin(a))/api/routes/tracking-by-number/mode \\
                -H "Authorization: Bearer $TOKEN" -d '{"mode": "legacy", "reason": "trying the shared table"}'
              \(curl) -si \(proxy(b))/tracking/UP900007919 | grep -i x-strangler-upstream      # legacy, within a second
              curl -s \(admin(b))\(AdminEndpoint.routes.template) | grep -m1 '"version"'      # the table version \(a) answered
              curl -s -X POST \(admin(a))\(AdminEndpoint.rollback.template) -H "Authorization: Bearer $TOKEN" -d '{"reason": "undo"}'
            The controls work on the database from anywhere (gates count both instances' comparisons):
              export STRANGLER_STORE=\(store)
              strangler routes list
              strangler routes history

            """
        )
        fflush(nil)
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

    static func printBanner(host: String, ports: [String: Int], routes: String, store: String, tokenFile: String, tls: DemoTLS? = nil) {
        let proxy = DemoTLS.bannerURL(host: host, port: ports["proxy"] ?? 0, tls: tls != nil)
        let admin = "http://\(host):\(ports["admin"] ?? 0)"
        print(
            """

            StranglerFig demo is running. Ctrl-C stops it.

              proxy       \(proxy)        ← clients call this
              admin       \(admin)        (GET \(AdminEndpoint.routes.template), \(AdminEndpoint.stats.template), \(AdminEndpoint.changes.template), \(AdminEndpoint.metrics.template), \(AdminEndpoint.openAPI.template))
              admin token \(tokenFile)   (writes: Authorization: Bearer <the part after "demo:">)\(tls.map { "\n  local CA    \($0.caLine)" } ?? "")
              legacy OMS  http://\(host):\(ports["legacy"] ?? 0)
              inventory   http://\(host):\(ports["inventory"] ?? 0)   (extracted service)
              tracking    http://\(host):\(ports["tracking"] ?? 0)   (extracted service)
              orders      http://\(host):\(ports["orders"] ?? 0)   (extracted service; honours dry-run)
              diff store  \(store)   (shadow comparisons)

            Try:
              \(tls.map { "\($0.curl) " } ?? "curl -s ")\(proxy)/orders/ORD-100001
              \(tls?.curl ?? "curl") -si \(proxy)/inventory/SKU-1001 | grep -i -e x-strangler-upstream -e totalOnHand
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

/// Why `strangler demo` can't start, said as it is printed.
struct DemoFailure: Error, CustomStringConvertible {
    var description: String
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
