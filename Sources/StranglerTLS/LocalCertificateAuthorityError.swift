/// A certificate that a ``LocalCertificateAuthority`` was asked for cannot be made.
public enum LocalCertificateAuthorityError: Error, Equatable, CustomStringConvertible {
    /// An entry of `ipAddresses` is not an IPv4 or IPv6 address literal.
    case invalidIPAddress(String)
    /// A server certificate needs at least one DNS name or IP address: clients verify the host
    /// against these alone, never against the common name.
    case noServerNames
    /// `notValidAfter` is before `notValidBefore`.
    case emptyValidity

    public var description: String {
        switch self {
        case .invalidIPAddress(let text): "\"\(text)\" is not an IP address"
        case .noServerNames: "a server certificate needs at least one DNS name or IP address"
        case .emptyValidity: "the certificate's notValidAfter is before its notValidBefore"
        }
    }
}
