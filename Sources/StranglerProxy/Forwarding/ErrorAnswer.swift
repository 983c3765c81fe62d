import NIOCore
import NIOHTTP1

/// The response the proxy gives itself when it can't forward one: a JSON body naming the error,
/// the request id and the upstream.
///
/// A pure function of its inputs, so the bytes of every refusal can be checked without a channel.
enum ErrorAnswer {
    /// The whole response for `error`, head and body.
    ///
    /// - Parameters:
    ///   - upstream: the upstream the request was for, named in the body when not empty.
    ///   - clientVersion: the HTTP version the status line speaks (the client's).
    ///   - closing: the connection closes after this answer, which the head says.
    static func bytes(
        for error: ProxyError,
        requestID: RequestIDValue,
        upstream: String,
        clientVersion: HTTPVersion,
        closing: Bool,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let body = error.jsonBody(requestID: requestID.string, upstream: upstream.isEmpty ? nil : upstream, allocator: allocator)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "x-request-id", value: requestID.string)
        if error.status == .methodNotAllowed {
            // RFC 9110 §15.5.6: a 405 names what is allowed. The proxy forwards every method it
            // knows except CONNECT; these are the common ones.
            headers.add(name: "allow", value: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")
        }
        if closing { headers.add(name: "connection", value: "close") }
        var response = allocator.buffer(capacity: 160 + body.readableBytes)
        response.writeHTTPResponseHead(HTTPResponseHead(version: clientVersion, status: error.status, headers: headers))
        response.writeImmutableBuffer(body)
        return response
    }
}
