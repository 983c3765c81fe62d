// swift-tools-version:6.0
import PackageDescription

// The forwarding path's own modules skip the runtime's dynamic exclusivity checks in release
// builds (one A/B: about 0.5 µs less user time per proxied request). The compiler's static
// checks still apply, and debug builds, which the tests run, keep the dynamic ones.
// Dependencies keep theirs: docs/architecture.md, "Build settings", says why. Unsafe flags are
// accepted because this package is always built as the root package, never as a dependency.
let forwardingPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

let package = Package(
    name: "StranglerFig",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "strangler", targets: ["strangler"]),
        .library(name: "StranglerCore", targets: ["StranglerCore"]),
        .library(name: "StranglerProxy", targets: ["StranglerProxy"]),
        .library(name: "StranglerControl", targets: ["StranglerControl"]),
        .library(name: "StranglerAdmin", targets: ["StranglerAdmin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // The shared store of several instances.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // TLS to PostgreSQL, to https upstreams, and on the proxy and admin listeners.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Certificates made in-process: the demo's local CA and the tests' certificates.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // Tests only: generators for the parser cross-check against NIOHTTP1's decoder and for the
        // evidence rollups' properties.
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        // Mergeable latency histograms for the per-minute evidence rollups.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // Route table, matching and validation: pure logic, no sockets.
        .target(
            name: "StranglerCore",
            dependencies: [],
            swiftSettings: forwardingPathSettings
        ),
        // The kernel's custom scheduling slices (Linux's sched_setattr has no Swift-callable
        // wrapper): event loops preempt background work as soon as they wake.
        .target(name: "CStranglerScheduling"),
        // Diff store: migrations runner, the embedded SQLite store and the shared PostgreSQL one.
        .target(
            name: "StranglerStore",
            dependencies: [
                "StranglerCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // SQLite's C API, for binding the per-comparison insert directly (DirectBinding).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // Diff reports for reviewers: the report model (its JSON is the stable format) and the
        // text, markdown and self-contained HTML renderings.
        .target(
            name: "StranglerReport",
            dependencies: ["StranglerCore", "StranglerStore"]
        ),
        // The data plane: SwiftNIO forwarding, the upstream pool, the wire parser, shadowing and
        // the live table it reads. NIO only: no Hummingbird, no reports, no signal handling.
        .target(
            name: "StranglerProxy",
            dependencies: [
                "StranglerCore",
                "StranglerStore",
                "CStranglerScheduling",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // TLSUserEvent: an upstream connection is handed out once its handshake completed.
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: forwardingPathSettings
        ),
        // The control plane: the route controller, route file editing, hot reload, the canary
        // monitor, and StranglerApplication, which starts and stops every part in order.
        .target(
            name: "StranglerControl",
            dependencies: [
                "StranglerCore",
                "StranglerStore",
                "StranglerProxy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // The admin API and the dashboard: the only Hummingbird user, and with the CLI the only
        // user of reports.
        .target(
            name: "StranglerAdmin",
            dependencies: [
                "StranglerCore",
                "StranglerStore",
                "StranglerReport",
                "StranglerProxy",
                "StranglerControl",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The dashboard: plain HTML, CSS and JS, served by the admin listener as they are.
            resources: [.copy("Dashboard")]
        ),
        // A local certificate authority: a CA, server and client certificates made in-process
        // as PEM files and NIOSSL values, for `strangler demo --tls` and the TLS tests.
        .target(
            name: "StranglerTLS",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The demo legacy OMS monolith and the extracted services.
        .target(
            name: "DemoOMS",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "strangler",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "StranglerCore",
                "StranglerProxy",
                "StranglerControl",
                "StranglerAdmin",
                "StranglerStore",
                "StranglerReport",
                "DemoOMS",
                "StranglerTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // The demo's https: its local CA's certificates, checked before they are reused.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Microbenchmarks of hot-path pieces (route matching, canary split); run by bench/micro.
        .executableTarget(
            name: "strangler-bench",
            dependencies: [
                "StranglerCore",
                "StranglerStore",
                "StranglerReport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "StranglerReportTests",
            dependencies: ["StranglerReport", "StranglerStore", "StranglerCore"]
        ),
        .testTarget(
            name: "StranglerCoreTests",
            dependencies: ["StranglerCore"]
        ),
        // Servers, clients and harnesses that the proxy, control, admin and integration tests
        // share: real upstreams on port 0, a raw-bytes HTTP client, a proxy with its control
        // plane and admin API.
        .target(
            name: "StranglerTestSupport",
            dependencies: [
                "StranglerCore",
                "StranglerStore",
                "StranglerProxy",
                "StranglerControl",
                "StranglerAdmin",
                "StranglerTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // TLSUserEvent: the tests' TLS client reports the handshake's outcome.
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/StranglerTestSupport"
        ),
        .testTarget(
            name: "StranglerProxyTests",
            dependencies: [
                "CStranglerScheduling",
                .product(name: "GRDB", package: "GRDB.swift"),
                "StranglerProxy",
                "StranglerStore",
                "StranglerCore",
                "StranglerTestSupport",
                "StranglerTLS",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "StranglerControlTests",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                "StranglerCore",
                "StranglerStore",
                "StranglerProxy",
                "StranglerControl",
                "StranglerTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "StranglerAdminTests",
            dependencies: [
                "StranglerCore",
                "StranglerStore",
                "StranglerProxy",
                "StranglerControl",
                "StranglerAdmin",
                "StranglerTestSupport",
                "StranglerTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tests that run the built `strangler` binary, and the whole demo end to end.
        .testTarget(
            name: "StranglerIntegrationTests",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "StranglerCore",
                "StranglerStore",
                "StranglerProxy",
                "StranglerControl",
                "StranglerAdmin",
                "StranglerTestSupport",
                "DemoOMS",
                "StranglerTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "StranglerStoreTests",
            dependencies: [
                "StranglerStore",
                "StranglerCore",
                // PostgresCluster: the tests' own PostgreSQL server.
                "StranglerTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for binding the per-comparison insert directly (DirectBinding).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "DemoOMSTests",
            dependencies: [
                "DemoOMS",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
