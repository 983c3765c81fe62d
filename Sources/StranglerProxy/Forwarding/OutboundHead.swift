import NIOCore
import NIOHTTP1
import StranglerCore

/// The client's request head rewritten for the upstream, with what the rewrite learned on the way.
///
/// A pure function of its inputs (the client's head, who the client is, the id generator):
/// it writes bytes and touches no channel, so it can be tested byte for byte.
struct OutboundHead {
    /// The head as upstreams without a base path get it.
    var request: OutboundRequest
    /// The client sent `Expect: 100-continue`: the proxy answers it, the upstream never sees it.
    var expectsContinue: Bool
    /// The client's id when it sent a valid one, else a generated one.
    var requestID: RequestIDValue

    /// Copies the client's head for the upstream in one pass over its header lines: same method,
    /// same target byte for byte, the same lines byte for byte minus hop-by-hop ones, plus
    /// forwarding headers and the request id. The same pass takes the request id (kept when
    /// valid, else generated) and `Expect: 100-continue` (answered by the proxy, not forwarded).
    ///
    /// - Parameters:
    ///   - clientAddress: the peer's address, appended to `X-Forwarded-For`.
    ///   - clientTrusted: the peer is a trusted proxy: its forwarding headers are extended
    ///     rather than replaced.
    ///   - overTLS: the request came over TLS: `X-Forwarded-Proto` says `https`.
    ///   - buffer: an empty buffer to write into, reused from an earlier exchange so that a
    ///     head costs no allocation.
    ///   - requestIDs: generates the id when the client sent none (or an invalid one).
    static func make(
        from head: ClientRequestHead,
        clientAddress: String,
        clientTrusted: Bool,
        overTLS: Bool = false,
        buffer: consuming ByteBuffer,
        requestIDs: inout RequestIDGenerator
    ) -> OutboundHead {
        // Taken, not borrowed: a borrowed buffer stays held by the caller for the call, and the
        // first write would copy it instead of reusing the spare's storage.
        var out = consume buffer
        // The request line as upstreams without a base path get it: the client's own bytes
        // when it spoke HTTP/1.1.
        if head.version.minor == 1 {
            head.bytes.withUnsafeReadableBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[head.requestLine])) }
        } else {
            OutboundRequest.writeRequestLine(method: head.method, basePath: "", target: head.targetBytes, into: &out)
        }
        let linesStart = out.readableBytes
        var copier = HeadLineCopier()
        var wantsTrailers = false
        var expectsContinue = false
        var incomingID: String?
        var host: Range<Int>?
        var trustedChain = ""
        var trustedProto = false
        var trustedForwardedHost = false
        head.bytes.withUnsafeReadableBytes { raw in
            for field in head.fields {
                switch field.kind {
                case .other, .xStranglerUpstream, .contentType, .contentEncoding:
                    if head.isConnectionListed(field) { continue }
                    copier.keep(field.line, from: raw, into: &out)
                case .contentLength:
                    copier.keep(field.line, from: raw, into: &out)
                case .connection, .transferEncoding, .keepAlive, .proxyConnection, .proxyAuthenticate, .proxyAuthorization, .trailer,
                    .upgrade:
                    // Hop-by-hop; the body's framing is restated below.
                    continue
                case .underscored: continue  // dropped, as nginx does: see ProxyHeaderName.underscored
                case .te:
                    if HTTPHeadSyntax.tokens(raw, field.value).contains("trailers") { wantsTrailers = true }
                case .xStranglerShadow:
                    // Only the proxy marks a request as a shadow copy: an upstream may treat one
                    // differently (a dry run skips its writes), so a client can't claim to be one.
                    continue
                case .host:
                    host = field.value
                    copier.keep(field.line, from: raw, into: &out)
                case .expect:
                    if HTTPHeadSyntax.matches(raw, field.value, "100-continue") {
                        expectsContinue = true
                    } else {
                        copier.keep(field.line, from: raw, into: &out)
                    }
                case .xRequestID:
                    if incomingID == nil { incomingID = head.string(at: field.value) }
                // Forwarding headers: a trusted peer's are extended, anyone else's replaced.
                case .xForwardedFor:
                    if clientTrusted {
                        let value = head.string(at: field.value)
                        trustedChain += trustedChain.isEmpty ? value : ", " + value
                    }
                case .xForwardedProto:
                    if clientTrusted {
                        trustedProto = true
                        copier.keep(field.line, from: raw, into: &out)
                    }
                case .xForwardedHost:
                    if clientTrusted {
                        trustedForwardedHost = true
                        copier.keep(field.line, from: raw, into: &out)
                    }
                case .forwarded:
                    if clientTrusted { copier.keep(field.line, from: raw, into: &out) }
                }
            }
            copier.flush(raw, into: &out)
            if !trustedForwardedHost, let host {
                out.writeStaticString("X-Forwarded-Host: ")
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[host]))
                out.writeStaticString("\r\n")
            }
        }
        let requestID: RequestIDValue
        if let incomingID, RequestID.isValid(incomingID) {
            requestID = .client(incomingID)
        } else {
            requestID = requestIDs.nextValue()
        }
        out.writeStaticString("X-Forwarded-For: ")
        if !trustedChain.isEmpty {
            out.writeString(trustedChain)
            out.writeStaticString(", ")
        }
        out.writeString(clientAddress)
        if !trustedProto { out.writeStaticString(overTLS ? "\r\nX-Forwarded-Proto: https" : "\r\nX-Forwarded-Proto: http") }
        out.writeStaticString("\r\nX-Request-Id: ")
        out.writeRequestID(requestID)
        out.writeStaticString("\r\n")
        if wantsTrailers { out.writeStaticString("te: trailers\r\n") }

        // Framing: keep the client's, so a request without a body goes up without one.
        if head.isChunked {
            out.writeStaticString("transfer-encoding: chunked\r\n")
        } else if head.contentLength == nil, head.method.framingAlwaysExpectsBody {
            out.writeStaticString("content-length: 0\r\n")
        }
        out.writeStaticString("\r\n")

        // Upstream-specific parts (base path, a missing Host) are added per attempt, as encoded.
        let request = OutboundRequest(
            method: head.method,
            target: head.targetBytes,
            head: out,
            linesStart: linesStart,
            hasHost: host != nil,
            isChunked: head.isChunked
        )
        return OutboundHead(request: request, expectsContinue: expectsContinue, requestID: requestID)
    }
}
