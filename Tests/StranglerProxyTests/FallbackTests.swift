import Foundation
import Logging
import StranglerCore
import StranglerProxy
import StranglerTestSupport
import Testing

@Suite("Service mode fallback to legacy")
struct FallbackTests {
    static let routes = #"[{"id": "svc", "path": "/svc/**", "mode": "service", "service": "service", "fallback": true}]"#

    @Test("a service that refuses connections: idempotent requests are retried on legacy")
    func connectFailure() async throws {
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }
        let dead = refusing.port
        try await withProxy(routes: Self.routes, servicePort: dead) { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/svc/items?x=1")
            #expect(response.status == 200)
            #expect(response.header("x-strangler-upstream") == "legacy")
            #expect(response.json()["upstream"] as? String == "legacy")
            #expect(response.json()["uri"] as? String == "/svc/items?x=1")
        }
    }

    @Test("a service answering 5xx: GET and PUT (with its body) are replayed on legacy")
    func serverError() async throws {
        try await withProxy(routes: Self.routes) { proxy in
            proxy.service.forcedStatus.withLockedValue { $0 = 503 }
            let get = try await RawConnection.get(port: proxy.port, "/svc/a")
            #expect(get.status == 200)
            #expect(get.header("x-strangler-upstream") == "legacy")

            let put = try await RawConnection.exchange(
                port: proxy.port,
                "PUT /svc/b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello there"
            )
            #expect(put.status == 200)
            #expect(put.json()["body"] as? String == "hello there")
            #expect(proxy.service.requests.count == 2)
            #expect(proxy.legacy.requests.count == 2)
        }
    }

    @Test("a non-idempotent request is never replayed: the client gets the service's answer")
    func postIsNotReplayed() async throws {
        try await withProxy(routes: Self.routes) { proxy in
            proxy.service.forcedStatus.withLockedValue { $0 = 503 }
            let post = try await RawConnection.exchange(port: proxy.port, "POST /svc/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            #expect(post.status == 503)
            #expect(post.header("x-strangler-upstream") == "service")
            #expect(proxy.legacy.requests.isEmpty)
        }
    }

    @Test("each upstream's base path applies to its own attempt: a fallback to legacy does not carry the service's")
    func basePathPerAttempt() async throws {
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }
        let legacy = try await TestUpstream(name: "legacy")
        let service = try await TestUpstream(name: "service")
        let json = """
            {"upstreams": {"legacy": {"url": "http://127.0.0.1:\(legacy.port)"},
                           "service": {"url": "http://127.0.0.1:\(service.port)/v2"},
                           "down": {"url": "http://127.0.0.1:\(refusing.port)/v9"}},
             "defaultUpstream": "legacy",
             "routes": [{"id": "up", "path": "/up/**", "mode": "service", "service": "service", "fallback": true},
                        {"id": "gone", "path": "/gone/**", "mode": "service", "service": "down", "fallback": true}]}
            """
        let server = ProxyServer(
            configuration: .init(port: 0, threads: 1, accessLog: false),
            table: try RouteTable.parse(Data(json.utf8)),
            logger: Logger(label: "test.basepath")
        )
        try await server.start()
        let served = try await RawConnection.get(port: server.localPort!, "/up/items?x=1")
        #expect(served.json()["uri"] as? String == "/v2/up/items?x=1")
        let fellBack = try await RawConnection.get(port: server.localPort!, "/gone/items?x=1")
        #expect(fellBack.header("x-strangler-upstream") == "legacy")
        #expect(fellBack.json()["uri"] as? String == "/gone/items?x=1")
        await server.shutdown()
        await legacy.stop()
        await service.stop()
    }

    @Test("without fallback a down service is a 502")
    func noFallback() async throws {
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }
        let dead = refusing.port
        try await withProxy(routes: #"[{"id": "svc", "path": "/svc/**", "mode": "service", "service": "service"}]"#, servicePort: dead) {
            proxy in
            let response = try await RawConnection.get(port: proxy.port, "/svc/a")
            #expect(response.status == 502)
            #expect(proxy.legacy.requests.isEmpty)
        }
    }

    @Test("retired mode never falls back")
    func retiredNoFallback() async throws {
        try await withProxy(routes: #"[{"id": "svc", "path": "/svc/**", "mode": "retired", "service": "service", "fallback": true}]"#) {
            proxy in
            proxy.service.forcedStatus.withLockedValue { $0 = 500 }
            let response = try await RawConnection.get(port: proxy.port, "/svc/a")
            #expect(response.status == 500)
            #expect(proxy.legacy.requests.isEmpty)
        }
    }
}
