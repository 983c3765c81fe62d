import Foundation

/// The period in which a certificate is valid.
public struct CertificateValidity: Sendable, Hashable {
    /// The first moment the certificate is valid.
    public var notValidBefore: Date
    /// The last moment the certificate is valid.
    public var notValidAfter: Date

    /// A period from `notValidBefore` to `notValidAfter`.
    public init(notValidBefore: Date, notValidAfter: Date) {
        self.notValidBefore = notValidBefore
        self.notValidAfter = notValidAfter
    }

    /// From an hour before `now` for 825 days.
    ///
    /// The hour's margin lets a peer whose clock runs a little behind accept a certificate made
    /// a moment ago. 825 days is the longest validity Apple's platforms accept for a TLS server
    /// certificate from a locally trusted CA: a longer one is rejected however it is trusted.
    public static func standard(from now: Date = Date()) -> CertificateValidity {
        CertificateValidity(
            notValidBefore: now.addingTimeInterval(-60 * 60),
            notValidAfter: now.addingTimeInterval(825 * 24 * 60 * 60)
        )
    }
}
