import Foundation
import StranglerCore
import StranglerProxy
import StranglerTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A listener that never accepts, with its accept queue already full: the kernel drops further
/// SYNs, so a connect to it hangs until the caller gives up. That is a connect timeout on
/// loopback, without touching any other address.
final class FullBacklogListener {
    let port: Int
    private var descriptors: [Int32] = []

    init() throws {
        let (listener, port) = try LoopbackSocket.bound(listen: 0)
        self.port = port
        descriptors.append(listener)
        var address = LoopbackSocket.address(port: port)
        // Fill the accept queue (backlog 0 still admits one or two) with connections nobody accepts.
        for _ in 0..<4 {
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = fcntl(filler, F_SETFL, fcntl(filler, F_GETFL) | O_NONBLOCK)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            descriptors.append(filler)
        }
        usleep(100_000)  // let the handshakes settle into the queue
    }

    deinit {
        for descriptor in descriptors { close(descriptor) }
    }
}

/// A port that refuses connections for as long as this object lives: a socket bound to it but
/// not listening. Unlike a closed port, no parallel test can take it over.
final class RefusingPort {
    let port: Int
    private let descriptor: Int32

    init() throws {
        (descriptor, port) = try LoopbackSocket.bound(listen: nil)
    }

    deinit { close(descriptor) }
}

@Suite("Connect timeout")
struct ConnectTimeoutTests {
    @Test("an upstream that does not accept within connectTimeoutMs gives 504 upstream_connect_timeout")
    func connectTimeout() async throws {
        let blackhole = try FullBacklogListener()
        try await withProxy(
            routes: #"[{"id": "slow", "path": "/slow/**", "mode": "service", "service": "service"}]"#,
            upstreamExtra: #", "connectTimeoutMs": 200"#,
            servicePort: blackhole.port
        ) { proxy in
            let response = try await RawConnection.get(port: proxy.port, "/slow/x")
            #expect(response.status == 504)
            #expect(response.json()["error"] as? String == "upstream_connect_timeout")
            #expect((response.json()["message"] as? String)?.contains("200 ms") == true)
        }
        withExtendedLifetime(blackhole) {}
    }
}
