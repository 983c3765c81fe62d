/// How an exchange ended, for the access log's `outcome`.
enum ExchangeOutcome {
    /// Both messages completed (or the proxy answered and closed cleanly).
    case ok
    /// The client closed during the upstream call.
    case clientClosed
    /// The upstream went silent after its response had started towards the client.
    case upstreamTimeoutMidBody
    /// The upstream closed after its response head had reached the client.
    case upstreamClosedMidBody
    /// The client's body stalled after the response had started.
    case clientBodyTimeout
    /// The client stopped taking the response.
    case clientSendTimeout
    /// The proxy's own error, after the response had started (so it could only abort).
    case error(ProxyError)

    /// The outcome as the access log names it.
    var name: String {
        switch self {
        case .ok: "ok"
        case .clientClosed: "client_closed"
        case .upstreamTimeoutMidBody: "upstream_timeout_mid_body"
        case .upstreamClosedMidBody: "upstream_closed_mid_body"
        case .clientBodyTimeout: "client_body_timeout"
        case .clientSendTimeout: "client_send_timeout"
        case .error(let error): error.name
        }
    }
}
