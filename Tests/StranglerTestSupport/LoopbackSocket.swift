import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Raw TCP sockets on 127.0.0.1 for the test peers that must sit below any HTTP library: an
/// upstream that breaks the protocol on purpose, a listener nobody accepts on, a port that
/// refuses. They all need the same steps (`socket`, `bind` to port 0, maybe `listen`, and
/// `getsockname` for the port the kernel chose), kept here so each peer states only what makes
/// it different.
package enum LoopbackSocket {
    /// A TCP socket bound to a free port on 127.0.0.1, chosen by the kernel: the port is taken for
    /// as long as the descriptor is open, so no parallel test can take it over.
    /// - Parameters:
    ///   - backlog: `listen`'s backlog; nil leaves the socket bound but not listening, so a
    ///     connect to the port is refused.
    ///   - reuseAddress: sets `SO_REUSEADDR` before binding.
    /// - Returns: the open descriptor, which the caller closes, and its port.
    package static func bound(listen backlog: Int32?, reuseAddress: Bool = false) throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EMFILE) }
        if reuseAddress {
            var one: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = Self.address(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, backlog.map({ listen(descriptor, $0) == 0 }) ?? true else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// The address of `port` on 127.0.0.1, for `bind` and `connect`.
    package static func address(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }
}
