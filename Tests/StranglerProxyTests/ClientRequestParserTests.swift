import NIOCore
import NIOHTTP1
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// The client request parser on its own: request lines, framing, de-chunking, reads split
/// anywhere, several requests in one buffer, and the malformed or ambiguous requests it must
/// refuse rather than guess at (request smuggling).
@Suite("Client request parser")
struct ClientRequestParserTests {
    /// What the parser made of one request.
    struct Parsed {
        var method = HTTPMethod.GET
        var uri = ""
        var target = ""
        var minor = 1
        var headers: [(String, String)] = []
        var keepAlive = false
        var body: [UInt8] = []
        var ended = false
    }

    /// Feeds `text` in pieces of `split` bytes (all at once when nil) and returns every request
    /// it held, in order.
    func parse(_ text: String, split: Int? = nil, maxHeadBytes: Int = 32 * 1024) throws -> [Parsed] {
        let bytes = Array(text.utf8)
        var parser = ClientRequestParser(maxHeadBytes: maxHeadBytes)
        var requests: [Parsed] = []
        let size = split ?? max(1, bytes.count)
        var offset = 0
        while offset < bytes.count {
            var buffer = ByteBuffer(bytes: bytes[offset..<min(offset + size, bytes.count)])
            offset += size
            while true {
                if parser.isDone {
                    guard buffer.readableBytes > 0 else { break }
                    parser.expectMessage(())
                }
                guard let event = try parser.next(&buffer) else { break }
                switch event {
                case .head(let head):
                    requests.append(
                        Parsed(
                            method: head.method,
                            uri: head.uri,
                            target: String(buffer: head.targetBytes),
                            minor: head.version.minor,
                            headers: head.headers,
                            keepAlive: head.isKeepAlive
                        )
                    )
                case .body(let part):
                    requests[requests.count - 1].body += part.readableBytesView
                case .end:
                    requests[requests.count - 1].ended = true
                }
            }
        }
        return requests
    }

    @Test("a head kept while the next is parsed keeps its own header lines (the parser reuses field arrays)")
    func fieldStorageReuse() throws {
        var parser = ClientRequestParser(maxHeadBytes: 8192)
        var buffer = ByteBuffer(
            string: "GET /a HTTP/1.1\r\nHost: one\r\nX-First: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: two\r\nX-Second: 2\r\nX-Third: 3\r\n\r\n"
                + "GET /c HTTP/1.1\r\nHost: three\r\n\r\n"
        )
        func nextHead() throws -> ClientRequestHead? {
            if parser.isDone { parser.expectMessage(()) }
            guard case .head(let head)? = try parser.next(&buffer) else { return nil }
            guard case .end? = try parser.next(&buffer) else { return nil }
            return head
        }
        let first = try #require(try nextHead())
        let second = try #require(try nextHead())
        // The first head is still held: the second must not have written into its fields.
        #expect(first.headers.map(\.0) == ["Host", "X-First"])
        #expect(first.headers.map(\.1) == ["one", "1"])
        #expect(second.headers.map(\.0) == ["Host", "X-Second", "X-Third"])
        #expect(second.uri == "/b")
        // A third head, parsed while both are held, leaves both as they were.
        let third = try #require(try nextHead())
        #expect(third.headers.map(\.1) == ["three"])
        #expect(first.headers.count == 2 && second.headers.count == 3)
    }

    @Test("a request with a Content-Length body, read whole and split at every size")
    func contentLength() throws {
        let text = "POST /orders?x=1 HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
        for split in [nil, 1, 2, 3, 7, 16, 64] {
            let requests = try parse(text, split: split)
            #expect(requests.count == 1)
            let request = try #require(requests.first)
            #expect(request.method == .POST && request.uri == "/orders?x=1" && request.target == "/orders?x=1")
            #expect(request.headers.map(\.0) == ["Host", "Content-Type", "Content-Length"])
            #expect(request.headers.map(\.1) == ["shop", "application/json", "11"])
            #expect(String(decoding: request.body, as: UTF8.self) == "{\"ok\":true}")
            #expect(request.ended && request.keepAlive)
        }
    }

    @Test("a chunked request body is de-chunked, split anywhere; trailers are read and dropped")
    func chunked() throws {
        let text = "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"
        for split in [nil, 1, 2, 5, 9] {
            let request = try #require(try parse(text, split: split).first)
            #expect(request.method == .PUT)
            #expect(String(decoding: request.body, as: UTF8.self) == "hello world")
            #expect(request.ended)
        }
    }

    @Test("pipelined requests in one buffer come out one after another, bodies and all")
    func pipelined() throws {
        let text =
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcDELETE /c HTTP/1.1\r\nHost: x\r\n\r\n"
        for split in [nil, 1, 4, 13] {
            let requests = try parse(text, split: split)
            #expect(requests.map(\.uri) == ["/a", "/b", "/c"])
            #expect(requests.map(\.method) == [.GET, .POST, .DELETE])
            #expect(requests[1].body == Array("abc".utf8))
            #expect(requests.filter(\.ended).count == 3)
        }
    }

    @Test("empty lines before a request line are skipped (RFC 9112 §2.2)")
    func leadingEmptyLines() throws {
        let requests = try parse("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", split: 3)
        #expect(requests.map(\.uri) == ["/a", "/b"])
    }

    @Test("methods: common ones without allocating, registered ones as RAW; others refused, and case matters")
    func methods() throws {
        for (text, method) in [
            ("GET", HTTPMethod.GET), ("HEAD", .HEAD), ("OPTIONS", .OPTIONS), ("PATCH", .PATCH), ("PROPFIND", .PROPFIND),
            ("M-SEARCH", .RAW(value: "M-SEARCH")), ("QUERY", .RAW(value: "QUERY")), ("PURGE", .PURGE),
        ] {
            let request = try #require(try parse("\(text) / HTTP/1.1\r\nHost: x\r\n\r\n").first)
            #expect(request.method == method)
            #expect(request.method.rawValue == text)
        }
        // llhttp refuses a method it does not know; so does the proxy, rather than forward one
        // that a parser behind it reads as junk.
        for text in ["BREW", "get", "Post", "GETS", "G_ET", "CONNECTX"] {
            let error = #expect(throws: HTTPParseFailure.self) { try parse("\(text) / HTTP/1.1\r\nHost: x\r\n\r\n") }
            #expect(error?.reason.contains("method is not one") == true, "\(text): \(error?.reason ?? "accepted")")
        }
    }

    @Test("an absolute-form target must name the host Host names (the upstream goes by the target's, the proxy by Host's)")
    func absoluteFormHostAgrees() throws {
        for text in [
            "GET http://admin.internal/x HTTP/1.1\r\nHost: shop.example\r\n\r\n",
            "GET http://shop.example:8443/x HTTP/1.1\r\nHost: shop.example\r\n\r\n",
            "GET https://shop.example/x HTTP/1.1\r\nHost: shop.example:443\r\n\r\n",
        ] {
            #expect(throws: HTTPParseFailure.self, "\(text)") { try parse(text) }
        }
        #expect(try parse("GET http://Shop.Example/x HTTP/1.1\r\nHost: shop.example\r\n\r\n")[0].target == "http://Shop.Example/x")
    }

    @Test("keep-alive follows the version and Connection: 1.1 unless close, 1.0 only with keep-alive")
    func keepAlive() throws {
        #expect(try parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0].keepAlive)
        #expect(try !parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0].keepAlive)
        #expect(try !parse("GET / HTTP/1.0\r\n\r\n")[0].keepAlive)
        #expect(try parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")[0].keepAlive)
        #expect(try parse("GET / HTTP/1.0\r\n\r\n")[0].minor == 0)
        // A chunked HTTP/1.0 request is read, but the connection closes after it.
        #expect(try !parse("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")[0].keepAlive)
    }

    @Test("a target keeps its bytes: a path with escapes, an absolute http(s) URL, * for OPTIONS")
    func targets() throws {
        #expect(try parse("GET /caf%C3%A9?q=%20&a={b}|c HTTP/1.1\r\nHost: x\r\n\r\n")[0].target == "/caf%C3%A9?q=%20&a={b}|c")
        #expect(try parse("GET http://shop/orders HTTP/1.1\r\nHost: shop\r\n\r\n")[0].target == "http://shop/orders")
        #expect(try parse("GET HTTPS://shop:8443?x HTTP/1.1\r\nHost: SHOP:8443\r\n\r\n")[0].target == "HTTPS://shop:8443?x")
        #expect(try parse("GET http://[::1] HTTP/1.1\r\nHost: [::1]\r\n\r\n")[0].target == "http://[::1]")
        #expect(try parse("GET http://shop/orders HTTP/1.0\r\n\r\n")[0].target == "http://shop/orders", "HTTP/1.0 may leave Host out")
        #expect(try parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")[0].target == "*")
    }

    @Test(
        "a target in no form RFC 9112 §3.2 gives a method, or with bytes llhttp refuses, is refused",
        arguments: [
            ("GET /caf\u{e9} HTTP/1.1", "over 0x7F"), ("GET * HTTP/1.1", "only for OPTIONS"), ("OPTIONS shop.example:443 HTTP/1.1", "not a path"),
            ("GET shop HTTP/1.1", "not a path"), ("GET ?x HTTP/1.1", "not a path"), ("GET ftp://a/x HTTP/1.1", "not a path"),
            ("GET http:/x HTTP/1.1", "not a path"), ("GET http://user@shop/ HTTP/1.1", "authority"), ("GET http:///x HTTP/1.1", "authority"),
            ("GET http://a\\b/ HTTP/1.1", "authority"),
        ]
    )
    func refusedTargets(line: String, reason: String) throws {
        let error = #expect(throws: HTTPParseFailure.self) { try parse(line + "\r\nHost: shop\r\n\r\n") }
        #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "accepted")")
    }

    @Test("chunk extensions: names, token and quoted values pass; whitespace, empty names and open quotes do not (as in llhttp)")
    func chunkExtensions() throws {
        for line in ["5;a", "5;a=b", "5;a=\"q s\"", "5;a=b;c=d", "5;a=\"\\\"\"", "05;name=value"] {
            let text = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(line)\r\nhello\r\n0\r\n\r\n"
            for split in [nil, 1, 4] {
                let request = try #require(try parse(text, split: split).first, "\(line)")
                #expect(request.body == Array("hello".utf8) && request.ended, "\(line)")
            }
        }
        for (line, reason) in [
            ("5 ", "whitespace"), ("5\t", "whitespace"), ("5 ;a", "whitespace"), ("5; a", "no name"), ("5;a =b", "whitespace"),
            ("5;", "cut short"), ("5;=b", "no name"), ("5;a=", "cut short"), ("5;a=\"open", "cut short"), ("5;a b", "whitespace"),
            ("5;a=b c", "whitespace"), ("5;\u{e9}", "no name"), ("5;a=\"\u{1}\"", "control byte"), ("5x", "not part of"),
        ] {
            let text = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(line)\r\nhello\r\n0\r\n\r\n"
            let error = #expect(throws: HTTPParseFailure.self, "\(line)") { try parse(text) }
            #expect(error?.reason.contains(reason) == true, "\(line): \(error?.reason ?? "accepted")")
        }
    }

    @Test(
        "malformed or ambiguous requests are refused with a reason",
        arguments: [
            ("HELLO THERE\r\n\r\n", "method is not one"),
            ("/ HTTP/1.1\r\n\r\n", "request line does not start"),
            ("GET /a b HTTP/1.1\r\n\r\n", "HTTP/1.0 or HTTP/1.1"),
            ("GET  HTTP/1.1\r\n\r\n", "request target"),
            ("GET /\u{01} HTTP/1.1\r\n\r\n", "request target"),
            ("GET / HTTP/2.0\r\n\r\n", "HTTP/1.0 or HTTP/1.1"),
            ("GET / HTTP/1.1\nHost: x\r\n\r\n", "bare LF"),
            ("GET / HTTP/1.1\nHost: x\n", "bare LF"),
            ("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", "bare LF"),
            ("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both Content-Length and Transfer-Encoding"),
            ("POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 7\r\n\r\nabcdefg", "conflicting Content-Length"),
            ("POST / HTTP/1.1\r\nContent-Length: 4, 4\r\n\r\nabcd", "not a number"),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", "repeated"),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\t\r\n\r\nabcd", "tab after"),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n", "tab after"),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", "trailer section"),
            ("POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\nabcd", "not a number"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "other than chunked"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "other than chunked"),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
            ("GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", "obs-fold"),
            ("GET / HTTP/1.1\r\nX-A : 1\r\n\r\n", "malformed"),
            ("GET / HTTP/1.1\r\nX-A: a\u{7F}b\r\n\r\n", "control byte"),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not hexadecimal"),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n", "not followed by CRLF"),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n", "too large"),
        ]
    )
    func malformed(text: String, reason: String) throws {
        let error = #expect(throws: HTTPParseFailure.self) { try parse(text) }
        #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "no error")")
        #expect(error?.isTooLarge == false)
    }

    @Test("CONNECT is refused as a method the proxy does not serve (405), not as malformed")
    func connectRefused() throws {
        for text in ["CONNECT shop.example:443 HTTP/1.1\r\nHost: shop.example:443\r\n\r\n", "CONNECT shop.example:443 HTTP/1.0\r\n\r\n"] {
            let error = #expect(throws: HTTPParseFailure.self) { try parse(text) }
            #expect(error?.kind == .methodNotAllowed)
            #expect(error?.reason.contains("CONNECT") == true)
            #expect(ProxyError(rejecting: try #require(error), maxHeaderBytes: 8192).status == .methodNotAllowed)
        }
    }

    @Test("an HTTP/1.1 request without Host is refused; an HTTP/1.0 one is served")
    func hostRequired() throws {
        let error = #expect(throws: HTTPParseFailure.self) { try parse("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n") }
        #expect(error?.reason.contains("without a Host header") == true)
        #expect(error?.kind == .malformed)
        let request = try #require(try parse("GET /old HTTP/1.0\r\nAccept: */*\r\n\r\n").first)
        #expect(request.uri == "/old" && request.minor == 0 && request.ended)
    }

    @Test(
        "a Host that is not a host name or address with an optional port is refused",
        arguments: [
            "a b/c", "shop/evil", "user@shop", "shop\\evil", "shop?x", "shop#x", "caf\u{e9}.example", "a\tb", "shop:80x",
            "shop:80:81", "[::1", "[]", "[::1]x", "%4", "%zz", "\"shop\"", "<shop>",
        ]
    )
    func invalidHost(host: String) throws {
        let error = #expect(throws: HTTPParseFailure.self) { try parse("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n") }
        #expect(error?.reason.contains("Host header is not a host name") == true, "\(error?.reason ?? "accepted")")
        // The same goes for HTTP/1.0, where Host is optional but must be valid when sent.
        #expect(throws: HTTPParseFailure.self) { try parse("GET / HTTP/1.0\r\nHost: \(host)\r\n\r\n") }
    }

    @Test(
        "host names, addresses, IP literals and ports are valid Host values, as is an empty one",
        arguments: [
            "shop.example", "shop.example:8080", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8443", "[v1.fe80::a+en1]",
            "xn--caf-dma.example", "my_host.local", "a-b~c!$&'()*+,;=", "%41shop", "shop:", "",
        ]
    )
    func validHost(host: String) throws {
        let request = try #require(try parse("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n").first)
        #expect(request.headers.first?.1 == host)
    }

    @Test("an HTTP/0.9 request line is refused as soon as it is in, without waiting for a blank line")
    func http09() throws {
        for split in [nil, 1, 3] {
            let error = #expect(throws: HTTPParseFailure.self) { try parse("GET /\r\n", split: split) }
            #expect(error?.reason.contains("HTTP/0.9") == true, "\(error?.reason ?? "waiting")")
        }
        // Its first line alone decides: a request line that is fine waits for the rest of its head.
        #expect(try parse("GET / HTTP/1.1\r\nHost: x\r\n", split: 2).isEmpty)
    }

    @Test("the HTTP/2 connection preface is refused, named as such")
    func http2Preface() throws {
        for text in ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "PRI * HTTP/2.0\r\n"] {
            let error = #expect(throws: HTTPParseFailure.self) { try parse(text) }
            #expect(error?.reason.contains("HTTP/2 connection preface") == true, "\(error?.reason ?? "accepted")")
            #expect(error?.kind == .malformed)
        }
    }

    @Test("an underscored header name is classified apart and never found by a hyphenated lookup")
    func underscoredNames() throws {
        let request = "GET / HTTP/1.1\r\nHost: x\r\nX_Strangler_Shadow: dry-run\r\nX_Forwarded_For: 10.0.0.1\r\nX_User: 7\r\nX-User: 8\r\n\r\n"
        var parser = ClientRequestParser(maxHeadBytes: 8192)
        var buffer = ByteBuffer(string: request)
        parser.expectMessage(())
        guard case .head(let head)? = try parser.next(&buffer) else {
            Issue.record("no head")
            return
        }
        #expect(head.fields.map(\.kind) == [.host, .underscored, .underscored, .underscored, .other])
        #expect(head.firstValue(named: "X-User") == "8")
        #expect(head.firstValue(named: "x-strangler-shadow") == nil)
        #expect(head.firstValue(named: "X-Forwarded-For") == nil)
        // Not even asked for by its own spelling: the upstream never sees it, so nothing is decided by it.
        #expect(head.firstValue(named: "X_User") == nil)
    }

    @Test("a header value is checked byte by byte at every offset: control bytes and DEL refused, tabs and bytes over 0x7F kept")
    func valueBytesAtEveryOffset() throws {
        // Values of 24 bytes, long enough that the parser reads most of them eight bytes at a
        // time, with one byte of interest at each offset.
        func head(_ value: [UInt8]) -> ByteBuffer {
            var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: shop\r\nX-Value: ")
            buffer.writeBytes(value)
            buffer.writeString("\r\nX-After: 1\r\n\r\n")
            return buffer
        }
        func parsedValue(_ value: [UInt8]) throws -> [UInt8]? {
            var parser = ClientRequestParser(maxHeadBytes: 8192)
            var buffer = head(value)
            parser.expectMessage(())
            guard case .head(let parsed)? = try parser.next(&buffer) else { return nil }
            let field = try #require(parsed.fields.first { parsed.string(at: $0.name) == "X-Value" })
            #expect(parsed.headers.last?.1 == "1")
            return parsed.bytes.getBytes(at: parsed.bytes.readerIndex + field.value.lowerBound, length: field.value.count)
        }
        for offset in 0..<24 {
            for bad: UInt8 in [0x00, 0x01, 0x08, 0x0A, 0x0B, 0x1F, 0x7F] {
                var value = [UInt8](repeating: UInt8(ascii: "v"), count: 24)
                value[offset] = bad
                let error = #expect(throws: HTTPParseFailure.self, "byte \(bad) at \(offset)") { try parsedValue(value) }
                #expect(error != nil)
            }
            for good: UInt8 in [0x09, 0x20, 0x7E, 0x80, 0xC3, 0xFF] {
                var value = [UInt8](repeating: UInt8(ascii: "v"), count: 24)
                value[offset] = good
                // Whitespace at the value's ends is not part of it.
                let kept =
                    good == 0x09 || good == 0x20 ? (offset == 0 ? Array(value.dropFirst()) : offset == 23 ? Array(value.dropLast()) : value) : value
                #expect(try parsedValue(value) == kept, "byte \(good) at \(offset)")
            }
        }
    }

    @Test("a head longer than the limit is refused as too large before it is all read")
    func oversizedHead() throws {
        let text = "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Padding: \(String(repeating: "p", count: 100))\r\n", count: 100)
        let error = #expect(throws: HTTPParseFailure.self) { try parse(text, split: 1000, maxHeadBytes: 4096) }
        #expect(error?.isTooLarge == true)
        #expect(try parse(text + "\r\n", maxHeadBytes: 32 * 1024).count == 1)
    }

    @Test("the forwarded copy keeps the client's lines byte for byte, drops hop-by-hop ones, and restates framing")
    func outboundCopy() throws {
        var lines = ByteBuffer(string: "Host: shop\r\nX-Marker: 1\r\nx-strangler-shadow: old\r\n")
        var request = OutboundRequest(method: .GET, target: ByteBuffer(string: "/o?x=1"), lines: lines, hasHost: true, isChunked: false)
        request.setHeader("X-Strangler-Shadow", "mirror")
        #expect(request.headers.map(\.0) == ["Host", "X-Marker", "X-Strangler-Shadow"])
        #expect(request.headers.last?.1 == "mirror")
        let upstream = Upstream(name: "legacy", url: "http://127.0.0.1:9/base", host: "127.0.0.1", port: 9, basePath: "/base")
        lines = request.encoded(for: upstream, allocator: ByteBufferAllocator())
        #expect(String(buffer: lines) == "GET /base/o?x=1 HTTP/1.1\r\nHost: shop\r\nX-Marker: 1\r\nX-Strangler-Shadow: mirror\r\n\r\n")
    }

    @Test("with a base path, an absolute-form target goes as its path and query under it; * goes as it is")
    func basePathWithOtherTargetForms() throws {
        let upstream = Upstream(name: "legacy", url: "http://127.0.0.1:9/base", host: "127.0.0.1", port: 9, basePath: "/base")
        for (target, expected) in [
            ("http://shop/o?x=1", "/base/o?x=1"), ("HTTPS://shop:8443?x", "/base?x"), ("http://shop", "/base"), ("*", "*"),
            ("/o", "/base/o"),
        ] {
            let request = OutboundRequest(
                method: .OPTIONS,
                target: ByteBuffer(string: target),
                lines: ByteBuffer(string: "Host: shop\r\n"),
                hasHost: true,
                isChunked: false
            )
            let line = String(buffer: request.encoded(for: upstream, allocator: ByteBufferAllocator())).components(separatedBy: "\r\n").first
            #expect(line == "OPTIONS \(expected) HTTP/1.1", "\(target)")
        }
    }

    @Test("setting a header drops every line of that name, whatever its case, and only those")
    func setHeaderReplaces() throws {
        let lines = ByteBuffer(
            string: "X-Strangler-Shadow: a\r\nHost: shop\r\nx-strangler-shadow-id: keep\r\nX-STRANGLER-SHADOW: b\r\nAccept: */*\r\n"
        )
        var request = OutboundRequest(method: .POST, target: ByteBuffer(string: "/o"), lines: lines, hasHost: true, isChunked: false)
        request.setHeader("X-Strangler-Shadow", "dry-run")
        request.setHeader("Idempotency-Key", "strangler-1")
        #expect(
            String(buffer: request.head)
                == "POST /o HTTP/1.1\r\nHost: shop\r\nx-strangler-shadow-id: keep\r\nAccept: */*\r\n"
                + "X-Strangler-Shadow: dry-run\r\nIdempotency-Key: strangler-1\r\n\r\n"
        )
        var bare = OutboundRequest(method: .GET, target: ByteBuffer(string: "/"), lines: ByteBuffer(), hasHost: false, isChunked: false)
        bare.setHeader("X-Strangler-Shadow", "mirror")
        #expect(String(buffer: bare.head) == "GET / HTTP/1.1\r\nX-Strangler-Shadow: mirror\r\n\r\n")
        bare.appendHeader("X-Extra", "1")
        #expect(String(buffer: bare.head) == "GET / HTTP/1.1\r\nX-Strangler-Shadow: mirror\r\nX-Extra: 1\r\n\r\n")
    }
}
