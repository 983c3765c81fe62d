import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import ServiceLifecycle

/// `strangler demo --traffic`: a steady, realistic mix of requests through the proxy, so the diff
/// store fills with comparisons within a minute. It prints a progress line every 10 seconds.
/// With several proxies (`demo --postgres`) the requests take turns among them.
struct DemoTraffic: Service {
    /// The proxies' base URLs, read when traffic starts (a port may have been 0).
    let proxyURLs: @Sendable () -> [String]
    let requestsPerSecond: Int
    /// How the requests trust an https proxy (`demo --tls`: the demo's CA); nil for http.
    var tls: TLSConfiguration? = nil
    let logger: Logger

    /// One request of the mix.
    struct Call {
        var method: HTTPMethod
        var path: String
        var body: String?
        /// Headers beside the body's content type.
        var headers: [(name: String, value: String)] = []
    }

    /// The mix: mostly reads of shadowed routes, some tracking, a few order placements. Orders
    /// come from three sales channels (`X-Channel`): the web shop's are shadowed to the orders
    /// service (route `order-place-web`), the store's and the mobile app's stay on legacy alone
    /// (`order-place`).
    static func nextCall(_ random: inout some RandomNumberGenerator) -> Call {
        let roll = Int.random(in: 0..<100, using: &random)
        let sku = "SKU-\(1001 + Int.random(in: 0..<40, using: &random))"
        let order = "ORD-\(100_001 + Int.random(in: 0..<60, using: &random))"
        switch roll {
        case 0..<45: return Call(method: .GET, path: "/inventory/\(sku)")
        case 45..<75: return Call(method: .GET, path: "/orders/\(order)")
        case 75..<90: return Call(method: .GET, path: "/orders/\(order)/tracking")
        case 90..<95:
            return Call(method: .GET, path: "/shipping/rates?zip=\(["10001", "94105", "60601"].randomElement(using: &random)!)&weightGrams=1200")
        default:
            let customer = String(format: "CUST-%04d", 1 + Int.random(in: 0..<25, using: &random))
            let channel = ["web", "web", "store", "mobile"].randomElement(using: &random)!
            return Call(
                method: .POST,
                path: "/orders",
                body: #"{"customerId": "\#(customer)", "items": [{"sku": "\#(sku)", "qty": 1}]}"#,
                headers: [("X-Channel", channel)]
            )
        }
    }

    func run() async throws {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.tlsConfiguration = tls
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let pause = Duration.milliseconds(1000 / max(1, requestsPerSecond))
        // Give the listeners a moment to bind before the first request.
        try? await Task.sleep(for: .seconds(1))
        let bases = proxyURLs()
        await cancelWhenGracefulShutdown {
            var random = SystemRandomNumberGenerator()
            var sent = 0
            var byProxy = [Int](repeating: 0, count: bases.count)
            var byClass: [Int: Int] = [:]
            var failures = 0
            var lastReport = ContinuousClock.now
            while !Task.isCancelled {
                let call = Self.nextCall(&random)
                let proxy = sent % max(1, bases.count)
                var request = HTTPClientRequest(url: bases[proxy] + call.path)
                request.method = call.method
                for header in call.headers { request.headers.add(name: header.name, value: header.value) }
                if let body = call.body {
                    request.headers.add(name: "content-type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: body))
                }
                do {
                    let response = try await client.execute(request, timeout: .seconds(10))
                    _ = try await response.body.collect(upTo: 4 * 1024 * 1024)
                    byClass[Int(response.status.code) / 100, default: 0] += 1
                } catch is CancellationError {
                    break
                } catch {
                    failures += 1
                }
                sent += 1
                byProxy[proxy] += 1
                if ContinuousClock.now - lastReport >= .seconds(10) {
                    lastReport = .now
                    let classes = byClass.keys.sorted().map { "\($0)xx: \(byClass[$0]!)" }.joined(separator: ", ")
                    let split = bases.count > 1 ? "; " + zip(bases, byProxy).map { "\($0): \($1)" }.joined(separator: ", ") : ""
                    print("traffic: \(sent) requests (\(classes)\(failures > 0 ? ", failed: \(failures)" : "")\(split))")
                    fflush(nil)
                }
                try? await Task.sleep(for: pause)
            }
        }
        try? await client.shutdown()
    }
}
