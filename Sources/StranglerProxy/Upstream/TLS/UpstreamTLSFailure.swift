import NIOSSL

/// Why TLS to an upstream failed, in the words the client's 502 and the log use.
///
/// Each cause has its own `error` label on `strangler_upstream_errors_total`, so a dashboard
/// tells an expired certificate from a wrong CA without reading logs.
public struct UpstreamTLSFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Cause: String, Sendable, Hashable {
        /// The certificate does not name the host (or `serverName`).
        case hostnameMismatch = "tls_hostname_mismatch"
        /// The certificate, or one in its chain, is past its end date.
        case certificateExpired = "tls_certificate_expired"
        /// The certificate, or one in its chain, is not valid yet.
        case certificateNotYetValid = "tls_certificate_not_yet_valid"
        /// The chain does not lead to a trusted CA.
        case untrustedIssuer = "tls_untrusted_issuer"
        /// The handshake failed for another reason (a protocol error, an alert from the peer,
        /// a client certificate the upstream wanted and did not get).
        case handshake = "tls_handshake"
        /// The upstream's TLS settings could not be loaded (a certificate file).
        case configuration = "tls_configuration"
    }

    /// What went wrong.
    public var cause: Cause
    /// The detail: the names, dates or protocol error involved.
    public var detail: String

    /// A failure with its cause and detail.
    public init(_ cause: Cause, _ detail: String) {
        self.cause = cause
        self.detail = detail
    }

    /// The cause in plain words, then the detail.
    public var description: String {
        let words =
            switch cause {
            case .hostnameMismatch: "hostname mismatch"
            case .certificateExpired: "certificate expired"
            case .certificateNotYetValid: "certificate not yet valid"
            case .untrustedIssuer: "untrusted issuer"
            case .handshake: "handshake failed"
            case .configuration: "TLS settings could not be loaded"
            }
        return detail.isEmpty ? words : "\(words): \(detail)"
    }

    /// The failure a handshake error stands for. A failed certificate verification has no
    /// reason attached (BoringSSL keeps it on the connection), so it comes back as
    /// ``Cause/untrustedIssuer`` marked for ``needsDiagnosis``.
    static func classify(_ error: Error, expectedName: String?) -> UpstreamTLSFailure {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return .init(.hostnameMismatch, "the certificate is not valid for \(expectedName.map { "\"\($0)\"" } ?? "the upstream's IP address")")
        }
        if let boring = error as? BoringSSLError {
            return classify(boringSSL: "\(boring)")
        }
        if let ssl = error as? NIOSSLError {
            switch ssl {
            case .handshakeFailed(let inner):
                return classify(boringSSL: "\(inner)")
            case .uncleanShutdown:
                return .init(.handshake, "the upstream closed the connection during the handshake")
            default:
                return .init(.handshake, "\(ssl)")
            }
        }
        return .init(.handshake, "\(error)")
    }

    private static func classify(boringSSL text: String) -> UpstreamTLSFailure {
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return .init(.untrustedIssuer, verifyFailedDetail)
        }
        return .init(.handshake, protocolDetail(text))
    }

    /// The detail of a verification failure before ``UpstreamTLSDiagnosis`` looked closer.
    static let verifyFailedDetail = "the certificate chain does not lead to a trusted CA; add the upstream's CA with caFile"

    /// Whether a closer look at the presented chain can name the cause better.
    var needsDiagnosis: Bool { cause == .untrustedIssuer && detail == Self.verifyFailedDetail }

    /// BoringSSL's reason, as in `SSLV3_ALERT_HANDSHAKE_FAILURE`, made readable; the whole text
    /// when there is no such reason in it.
    private static func protocolDetail(_ text: String) -> String {
        // BoringSSL error strings read "error:…:SSL routines:OPENSSL_internal:REASON".
        let reasons = text.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).filter {
            $0.count > 3 && $0.allSatisfy { $0.isUppercase || $0.isNumber || $0 == "_" } && $0.contains("_")
        }
        guard let reason = reasons.last else { return text }
        var words = reason.lowercased().replacingOccurrences(of: "_", with: " ")
        for prefix in ["sslv3 alert ", "tlsv1 alert "] where words.hasPrefix(prefix) {
            words = "the upstream sent the alert \"\(words.dropFirst(prefix.count))\""
        }
        if reason.contains("CERTIFICATE_REQUIRED") || reason.contains("HANDSHAKE_FAILURE") && reason.contains("ALERT") {
            words += " (does it require a client certificate? set clientCertFile and clientKeyFile)"
        }
        return words
    }
}
