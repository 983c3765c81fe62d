import NIOCore
import NIOHTTP1
import StranglerCore

/// How a forwarded response is framed towards the client, and whether the connection ends with it.
///
/// Decided from the upstream's head and the client's request alone, before any byte is written.
struct ResponseFraming: Equatable {
    /// The body goes to the client in chunked framing (its upstream sent no length).
    var chunked: Bool
    /// The client connection closes after this response.
    var closeAfterResponse: Bool
}

extension ResponseFraming {
    /// Frames a response with `statusCode` and the upstream's `contentLength` for the client.
    ///
    /// - Parameters:
    ///   - closeAlready: the connection was already going to close (quiescing, a rejected
    ///     pipelined request).
    ///   - requestComplete: the client's request has ended; an answer before its end ends the
    ///     connection (docs/reliability.md, "Staged close"): the rest of the body is read and dropped in a staged
    ///     close, not waited for with reads paused.
    init(
        method: HTTPMethod,
        statusCode code: Int,
        contentLength: Int?,
        clientVersion: HTTPVersion,
        clientKeepAlive: Bool,
        requestComplete: Bool,
        closeAlready: Bool
    ) {
        // The upstream's length when it sent one; otherwise chunked, except that an HTTP/1.0
        // client can't take chunks, so its body ends at the close.
        let bodyless = method == .HEAD || code == 204 || code == 304
        let unframed = !bodyless && contentLength == nil
        chunked = unframed && clientVersion.minor >= 1
        closeAfterResponse = closeAlready || !clientKeepAlive || (clientVersion.minor == 0 && unframed) || !requestComplete
    }
}

/// Writes the response head the client gets from the upstream's head.
enum ResponseHeadRewrite {
    /// Writes the head into `out` (an empty buffer reused from an earlier exchange): the status
    /// line in the client's version, then one pass over the upstream's lines: hop-by-hop ones out
    /// (and a Content-Length that Transfer-Encoding overrode), the proxy's own replaced, the
    /// rest copied byte for byte; then the request id, the upstream's name and the framing.
    static func write(
        _ head: UpstreamResponseHead,
        clientVersion: HTTPVersion,
        requestID: RequestIDValue,
        upstreamName: String,
        framing: ResponseFraming,
        into out: inout ByteBuffer
    ) {
        out.writeStatusLineStart(version: clientVersion, code: head.statusCode)
        head.bytes.withUnsafeReadableBytes { raw in
            // The reason phrase and its CRLF, then the kept lines, in runs.
            var copier = HeadLineCopier()
            copier.keep(head.reason.lowerBound..<(head.fields.first?.line.lowerBound ?? raw.count - 2), from: raw, into: &out)
            for field in head.fields {
                switch field.kind {
                case .xRequestID, .xStranglerUpstream:
                    continue
                case .contentLength where head.contentLength == nil:
                    continue
                case let kind where kind.isHopByHop:
                    continue
                default:
                    if head.isConnectionListed(field) { continue }
                    copier.keep(field.line, from: raw, into: &out)
                }
            }
            copier.flush(raw, into: &out)
        }
        out.writeStaticString("X-Request-Id: ")
        out.writeRequestID(requestID)
        out.writeStaticString("\r\nX-Strangler-Upstream: ")
        out.writeString(upstreamName)
        out.writeStaticString("\r\n")
        if framing.chunked { out.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if framing.closeAfterResponse {
            out.writeStaticString("Connection: close\r\n")
        } else if clientVersion.minor == 0 {
            out.writeStaticString("Connection: keep-alive\r\n")
        }
        out.writeStaticString("\r\n")
    }
}
