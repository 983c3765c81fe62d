import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The network-order bytes of an IP address literal, as an IP subject alternative name holds
/// them: 4 for IPv4, 16 for IPv6.
public enum IPAddressBytes {
    /// The bytes of `text` (`127.0.0.1`, `::1`), or nil when it is not an address literal.
    public static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}
