extension ProxyError {
    /// The answer to a request the parser rejected: 431 for an oversized head, 405 for a method
    /// the proxy does not serve (CONNECT: it opens no tunnels), 400 for everything else
    /// (malformed requests, conflicting `Content-Length`/`Transfer-Encoding`: no request
    /// smuggling). Such a request is never forwarded.
    init(rejecting failure: HTTPParseFailure, maxHeaderBytes: Int) {
        switch failure.kind {
        case .tooLarge:
            self = .headersTooLarge(
                "the request head exceeds \(maxHeaderBytes) bytes, the most this proxy accepts; send fewer or smaller headers"
            )
        case .methodNotAllowed:
            self = .methodNotAllowed("\(failure.reason); it was not forwarded")
        case .malformed:
            self = .badRequest("the request is not valid HTTP/1.1: \(failure.reason); it was not forwarded")
        }
    }
}
