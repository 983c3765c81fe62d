import NIOCore
import NIOHTTP1
import StranglerCore

/// Why the proxy answered a request itself instead of relaying an upstream's answer.
///
/// Modelled on AsyncHTTPClient's `HTTPClientError`: a struct over a private code, so new cases
/// can be added without breaking users.
public struct ProxyError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case connectFailed
        case connectTimeout
        case upstreamTimeout
        case upstreamClosed
        case invalidResponse
        case poolExhausted
        case bodyTooLarge
        case headersTooLarge
        case badRequest
        case requestTimeout
        case methodNotAllowed
        /// `sent`: the failure came after the handshake, once the request may have gone out.
        case upstreamTLS(UpstreamTLSFailure.Cause, sent: Bool)
    }

    private let code: Code
    /// Human-readable detail, naming the upstream and the cause.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The upstream refused or could not be reached.
    public static func connectFailed(_ detail: String) -> ProxyError { .init(.connectFailed, detail) }
    /// The TCP connect took longer than `connectTimeoutMs`.
    public static func connectTimeout(_ detail: String) -> ProxyError { .init(.connectTimeout, detail) }
    /// The upstream was silent for longer than `timeoutMs`.
    public static func upstreamTimeout(_ detail: String) -> ProxyError { .init(.upstreamTimeout, detail) }
    /// The upstream closed the connection before a complete response.
    public static func upstreamClosed(_ detail: String) -> ProxyError { .init(.upstreamClosed, detail) }
    /// The upstream's response broke HTTP/1.1 framing or syntax.
    public static func invalidResponse(_ detail: String) -> ProxyError { .init(.invalidResponse, detail) }
    /// Every pooled connection to the upstream was busy and the wait queue was full.
    public static func poolExhausted(_ detail: String) -> ProxyError { .init(.poolExhausted, detail) }
    /// The request body exceeded the configured maximum.
    public static func bodyTooLarge(_ detail: String) -> ProxyError { .init(.bodyTooLarge, detail) }
    /// The request head exceeded the configured maximum.
    public static func headersTooLarge(_ detail: String) -> ProxyError { .init(.headersTooLarge, detail) }
    /// The request could not be parsed.
    public static func badRequest(_ detail: String) -> ProxyError { .init(.badRequest, detail) }
    /// The client did not send its request head or body in time.
    public static func requestTimeout(_ detail: String) -> ProxyError { .init(.requestTimeout, detail) }
    /// The request is well-formed, but the proxy does not serve its method (CONNECT).
    public static func methodNotAllowed(_ detail: String) -> ProxyError { .init(.methodNotAllowed, detail) }

    /// TLS to the upstream failed: its certificate, its name, or the handshake.
    /// - Parameter afterHandshake: the failure came once the handshake had completed (a TLS 1.3
    ///   server refusing the client's certificate, an alert mid-exchange): the request may have
    ///   been sent, so it is not a connect failure and only a replayable request goes again.
    public static func upstreamTLS(_ failure: UpstreamTLSFailure, upstream: Upstream, afterHandshake: Bool = false) -> ProxyError {
        .init(.upstreamTLS(failure.cause, sent: afterHandshake), "upstream \"\(upstream.name)\" (\(upstream.authority)): TLS \(failure)")
    }

    /// The status the client gets.
    public var status: HTTPResponseStatus {
        switch code {
        case .connectFailed, .upstreamClosed, .invalidResponse, .upstreamTLS: .badGateway
        case .connectTimeout, .upstreamTimeout: .gatewayTimeout
        case .poolExhausted: .serviceUnavailable
        case .bodyTooLarge: .payloadTooLarge
        case .headersTooLarge: .init(statusCode: 431, reasonPhrase: "Request Header Fields Too Large")
        case .badRequest: .badRequest
        case .requestTimeout: .requestTimeout
        case .methodNotAllowed: .methodNotAllowed
        }
    }

    /// Stable machine-readable name, the `error` field of the JSON body.
    public var name: String {
        switch code {
        case .connectFailed: "upstream_unreachable"
        case .connectTimeout: "upstream_connect_timeout"
        case .upstreamTimeout: "upstream_timeout"
        case .upstreamClosed: "upstream_closed"
        case .invalidResponse: "upstream_invalid_response"
        case .poolExhausted: "upstream_busy"
        case .bodyTooLarge: "body_too_large"
        case .headersTooLarge: "headers_too_large"
        case .badRequest: "bad_request"
        case .requestTimeout: "client_timeout"
        case .methodNotAllowed: "method_not_allowed"
        case .upstreamTLS: "upstream_tls"
        }
    }

    /// The `error` label of `strangler_upstream_errors_total`: ``name``, except that a TLS
    /// failure is labelled by its cause (`tls_hostname_mismatch`, `tls_certificate_expired`, …).
    public var metricKind: String {
        if case .upstreamTLS(let cause, _) = code { return cause.rawValue }
        return name
    }

    /// Whether the failure happened before the upstream saw any of the request, so a retry
    /// elsewhere can't duplicate an effect.
    var isConnectFailure: Bool {
        switch code {
        case .connectFailed, .connectTimeout, .poolExhausted: true
        case .upstreamTLS(_, let sent): !sent
        default: false
        }
    }

    /// The upstream's response was not valid HTTP/1.1 (or went on past its end): a finding
    /// about the upstream, not a lost connection.
    var isInvalidResponse: Bool { code == .invalidResponse }

    /// The ``name`` and the ``detail``, as `name: detail`, for logs.
    public var description: String { "\(name): \(detail)" }

    /// The JSON body the client gets: `{"error", "message", "requestId", "upstream"?}`.
    func jsonBody(requestID: String?, upstream: String?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var text = "{\"error\":\"\(name)\",\"status\":\(status.code),\"message\":\(JSONDocument.quoted(detail))"
        if let upstream { text += ",\"upstream\":\(JSONDocument.quoted(upstream))" }
        if let requestID { text += ",\"requestId\":\(JSONDocument.quoted(requestID))" }
        text += "}\n"
        return allocator.buffer(string: text)
    }
}
