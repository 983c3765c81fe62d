import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Loopback ports for servers a test starts as separate processes (PostgreSQL, nginx, the demo),
/// which must be told their port before they bind it.
///
/// A port found by binding port 0 and closing it comes from the kernel's ephemeral range, the
/// same range every other test's port-0 listener and every outgoing connection draws from, so
/// on a busy machine another test may take it before the server binds it. These ports come from
/// below that range (20000 up to its start, read from `/proc/sys/net/ipv4/ip_local_port_range`), where only an
/// explicit bind lands, and each is handed out once per test process; a port some other program
/// holds is skipped by trying to bind it first.
package enum LoopbackPorts {
    /// From 20000 up to the start of the kernel's ephemeral range (at most 32000).
    private static let range = 20000..<max(20100, min(32000, ephemeralStart()))
    /// The next port to try; it starts at a place given by the process id, so two test runs on
    /// one machine rarely start on the same ports.
    private static let next = NIOLockedValueBox(Int(getpid()) % range.count)

    /// A port on 127.0.0.1 that no listener held when it was tried, and that this process has
    /// not handed out before.
    package static func reserve() throws -> Int {
        for _ in 0..<range.count {
            let port = next.withLockedValue { offset -> Int in
                defer { offset = (offset + 1) % range.count }
                return range.lowerBound + offset
            }
            if try isFree(port) { return port }
        }
        throw PostgresClusterError(description: "no free loopback port between \(range.lowerBound) and \(range.upperBound - 1)")
    }

    /// The first port of `/proc/sys/net/ipv4/ip_local_port_range`; Linux's default, 32768,
    /// where the file cannot be read.
    private static func ephemeralStart() -> Int {
        let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        return text?.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
    }

    /// Whether 127.0.0.1:`port` can be bound now.
    private static func isFree(_ port: Int) throws -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw PostgresClusterError(description: "could not open a socket to find a free port (errno \(errno))") }
        defer { close(descriptor) }
        var address = LoopbackSocket.address(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0
    }
}
