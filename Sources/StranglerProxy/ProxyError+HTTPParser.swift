import NIOHTTP1

extension ProxyError {
    /// The answer to a request the HTTP parser rejected: 431 for an oversized head, 400 for
    /// everything else (malformed requests, conflicting `Content-Length`/`Transfer-Encoding`:
    /// no request smuggling). Such a request is never forwarded.
    init(rejecting parserError: HTTPParserError, maxHeaderBytes: Int) {
        switch parserError {
        case .headerOverflow:
            self = .headersTooLarge(
                "the request head exceeds \(maxHeaderBytes) bytes (--max-header-bytes); send fewer or smaller headers"
            )
        case .unexpectedContentLength, .invalidContentLength, .invalidChunkSize:
            self = .badRequest(
                "conflicting or invalid Content-Length / Transfer-Encoding (\(parserError)); the request was not forwarded"
            )
        default:
            self = .badRequest("the request is not valid HTTP/1.1 (\(parserError))")
        }
    }
}
