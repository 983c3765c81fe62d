import NIOCore
import NIOHTTP1

/// Answers requests the HTTP parser rejected: 431 for an oversized head, 400 for everything else
/// (malformed requests, conflicting `Content-Length`/`Transfer-Encoding`: no request smuggling).
///
/// It replaces NIO's `HTTPServerProtocolErrorHandler` so that the answer carries a JSON body like
/// every other error of the proxy, and so an oversized head gets the right status.
final class ClientProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var hasUnterminatedResponse = false
    private let maxHeaderBytes: Int

    init(maxHeaderBytes: Int) {
        self.maxHeaderBytes = maxHeaderBytes
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        // The decoder closes the channel right after this returns; we can only write now.
        if !hasUnterminatedResponse {
            let proxyError: ProxyError
            switch parserError {
            case .headerOverflow:
                proxyError = .headersTooLarge(
                    "the request head exceeds \(maxHeaderBytes) bytes (--max-header-bytes); send fewer or smaller headers"
                )
            case .unexpectedContentLength, .invalidContentLength, .invalidChunkSize:
                proxyError = .badRequest(
                    "conflicting or invalid Content-Length / Transfer-Encoding (\(parserError)); the request was not forwarded"
                )
            default:
                proxyError = .badRequest("the request is not valid HTTP/1.1 (\(parserError))")
            }
            let body = proxyError.jsonBody(requestID: nil, upstream: nil, allocator: context.channel.allocator)
            let headers = HTTPHeaders([
                ("Connection", "close"), ("Content-Type", "application/json"), ("Content-Length", String(body.readableBytes)),
            ])
            let head = HTTPResponseHead(version: .http1_1, status: proxyError.status, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200:
            hasUnterminatedResponse = true
        case .end:
            hasUnterminatedResponse = false
        default:
            break
        }
        context.write(data, promise: promise)
    }
}
