import NIOCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// The upstream response parser on its own: framing, de-chunking, reads split anywhere, and the
/// malformed responses it must refuse rather than guess at.
@Suite("Upstream response parser")
struct UpstreamResponseParserTests {
    /// What the parser made of a response: status, header pairs, body, trailers, whether it ended.
    struct Parsed {
        var status = 0
        var headers: [(String, String)] = []
        var keepAlive = false
        var body: [UInt8] = []
        var trailers: String?
        var ended = false
        var leftover = 0
    }

    /// Feeds `text` in pieces of `split` bytes (all at once when nil).
    func parse(_ text: String, split: Int? = nil, bodyless: Bool = false, close: Bool = false) throws -> Parsed {
        try parse(bytes: Array(text.utf8), split: split, bodyless: bodyless, close: close)
    }

    func parse(bytes: [UInt8], split: Int? = nil, bodyless: Bool = false, close: Bool = false) throws -> Parsed {
        var parser = UpstreamResponseParser()
        parser.expectResponse(bodyless: bodyless)
        var parsed = Parsed()
        let size = split ?? max(1, bytes.count)
        var offset = 0
        func handle(_ event: UpstreamResponseParser.Event) {
            switch event {
            case .head(let head):
                parsed.status = head.statusCode
                parsed.headers = head.headers
                parsed.keepAlive = head.isKeepAlive
            case .body(let buffer):
                parsed.body += buffer.readableBytesView
            case .end(let trailers):
                parsed.ended = true
                parsed.trailers = trailers.map { String(buffer: $0) }
            }
        }
        while offset < bytes.count, !parsed.ended {
            var buffer = ByteBuffer(bytes: bytes[offset..<min(offset + size, bytes.count)])
            offset += size
            while let event = try parser.next(&buffer) {
                handle(event)
                if case .end = event { break }
            }
            parsed.leftover += buffer.readableBytes
        }
        if offset < bytes.count { parsed.leftover += bytes.count - offset }
        if close, !parsed.ended, let event = try parser.connectionClosed() { handle(event) }
        return parsed
    }

    @Test("a Content-Length body, read whole and split at every size: same head, body and end")
    func contentLength() throws {
        let text =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n{\"ok\":true}"
        for split in [nil, 1, 2, 3, 7, 16, 64] {
            let parsed = try parse(text, split: split)
            #expect(parsed.status == 200)
            #expect(parsed.headers.map(\.0) == ["Content-Type", "Content-Length", "Set-Cookie", "Set-Cookie"])
            #expect(parsed.headers.map(\.1) == ["application/json", "11", "a=1", "b=2"])
            #expect(String(decoding: parsed.body, as: UTF8.self) == "{\"ok\":true}")
            #expect(parsed.ended && parsed.keepAlive && parsed.leftover == 0)
        }
    }

    @Test("chunked bodies are de-chunked, with extensions skipped and trailers kept, split anywhere")
    func chunked() throws {
        let text =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: 42\r\n\r\n"
        for split in [nil, 1, 2, 5, 9] {
            let parsed = try parse(text, split: split)
            #expect(String(decoding: parsed.body, as: UTF8.self) == "helloabcdefghijklmnopqrstuvwxyz")
            #expect(parsed.trailers == "X-Checksum: 42\r\n")
            #expect(parsed.ended && parsed.keepAlive)
        }
        let plain = try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", split: 4)
        #expect(String(decoding: plain.body, as: UTF8.self) == "abc" && plain.trailers == nil && plain.ended)
    }

    @Test("random bodies in random chunk sizes, fed in random pieces, come out byte for byte (seeded)")
    func randomChunking() throws {
        var random = SeededGenerator(seed: 0x5EED)
        for _ in 0..<200 {
            let body = (0..<Int.random(in: 0...3000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var wire = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            var offset = 0
            while offset < body.count {
                let size = min(Int.random(in: 1...700, using: &random), body.count - offset)
                let extensions = Bool.random(using: &random) ? ";x=1" : ""
                wire += Array((String(size, radix: 16, uppercase: Bool.random(using: &random)) + extensions + "\r\n").utf8)
                wire += body[offset..<offset + size] + Array("\r\n".utf8)
                offset += size
            }
            wire += Array("0\r\n\r\n".utf8)
            let parsed = try parse(bytes: wire, split: Int.random(in: 1...900, using: &random))
            #expect(parsed.body == body)
            #expect(parsed.ended && parsed.leftover == 0 && parsed.trailers == nil)
        }
    }

    @Test("a response with both Content-Length and Transfer-Encoding is refused, as llhttp and nginx refuse it")
    func bothFramingsRefused() throws {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n",
        ] {
            let error = #expect(throws: HTTPParseFailure.self) { try parse(text) }
            #expect(error?.reason.contains("both Content-Length and Transfer-Encoding") == true)
        }
    }

    @Test("a transfer coding other than chunked is refused: the proxy decodes none, and would relay the coded bytes as the body")
    func otherCodingsRefused() throws {
        for coding in ["gzip", "gzip, chunked", "chunked, gzip", "chunked,", "identity", "chunked\r\nTransfer-Encoding: chunked"] {
            let error = #expect(throws: HTTPParseFailure.self, "\(coding)") {
                try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: \(coding)\r\n\r\n5\r\nhello\r\n0\r\n\r\n", close: true)
            }
            #expect(error?.reason.contains("other than chunked") == true, "\(coding)")
        }
        #expect(try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n").body == Array("hello".utf8))
    }

    @Test("an interim response is read as strictly as a final one, and has no place in HTTP/1.0")
    func interimChecked() throws {
        let malformed = #expect(throws: HTTPParseFailure.self) {
            try parse("HTTP/1.1 100 Continue\r\nBad Header: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        }
        #expect(malformed?.reason.contains("malformed") == true)
        let old = #expect(throws: HTTPParseFailure.self) {
            try parse("HTTP/1.0 199 Odd\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        }
        #expect(old?.reason.contains("interim (1xx) response in HTTP/1.0") == true)
        let closing = #expect(throws: HTTPParseFailure.self) {
            try parse("HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        }
        #expect(closing?.reason.contains("Connection: close") == true)
        // Interim heads parsed in turn with a final one leave the final one's lines intact.
        let parsed = try parse("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok", split: 7)
        #expect(parsed.headers.map(\.0) == ["X-A", "Content-Length"] && parsed.body == Array("ok".utf8))
    }

    @Test("no length: the body runs to the close, and the connection is not reused")
    func closeDelimited() throws {
        let parsed = try parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", split: 4, close: true)
        #expect(String(decoding: parsed.body, as: UTF8.self) == "until the end")
        #expect(parsed.ended && !parsed.keepAlive)
    }

    @Test("HEAD, 204 and 304 answers have no body whatever their headers say; interim 1xx answers are skipped")
    func bodyless() throws {
        let head = try parse("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", bodyless: true)
        #expect(head.ended && head.body.isEmpty && head.headers.first?.1 == "50")
        let noContent = try parse("HTTP/1.1 204 No Content\r\n\r\n")
        #expect(noContent.ended && noContent.status == 204)
        let notModified = try parse("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n")
        #expect(notModified.ended && notModified.status == 304)
        let interim = try parse(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
        )
        #expect(interim.status == 201 && interim.ended)
    }

    @Test("a comparison captures only Content-Type, Content-Encoding and the route's compared headers; lookups ignore ASCII case only")
    func comparedHeaders() throws {
        let text =
            "HTTP/1.1 200 OK\r\nDate: x\r\nContent-Type: application/json\r\nX-Version: 2\r\nX-Version: 3\r\n"
            + "Content-Encoding: gzip\r\nX_Version: no\r\nContent-Length: 0\r\n\r\n"
        var parser = UpstreamResponseParser()
        parser.expectResponse(bodyless: false)
        var buffer = ByteBuffer(string: text)
        guard case .head(let head)? = try parser.next(&buffer) else {
            Issue.record("no head")
            return
        }
        var side = ShadowJob.Side(upstream: "svc")
        side.captureHead(head, comparing: ["x-version"], bodyLimit: 1024)
        let captured = side.headers
        #expect(side.status == 200)
        #expect(captured.map(\.name) == ["Content-Type", "X-Version", "X-Version", "Content-Encoding"])
        #expect(captured.map(\.value) == ["application/json", "2", "3", "gzip"])
        var fewer = ShadowJob.Side(upstream: "svc")
        fewer.captureHead(head, comparing: [], bodyLimit: 1024)
        #expect(fewer.headers.count == 2)
        // The body goes after the headers, and reading one never shows the other.
        side.append(ByteBuffer(string: "{}"))
        #expect(side.body == ByteBuffer(string: "{}"))
        #expect(side.headers.count == 4)
        #expect(head.firstValue(named: "x-VERSION") == "2")
        #expect(head.firstValue(named: "x-version-2") == nil)
    }

    @Test("keep-alive follows the version and Connection: 1.1 unless close, 1.0 only with keep-alive")
    func keepAlive() throws {
        #expect(try parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(try !parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(try !parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive)
        #expect(try parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keepAlive)
    }

    @Test("bytes after a complete response are left for the caller, not taken as the next response")
    func leftover() throws {
        let parsed = try parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")
        #expect(parsed.ended && parsed.leftover == 17)
    }

    @Test(
        "malformed responses are refused with a reason",
        arguments: [
            ("HTTP/2 200 OK\r\n\r\n", "status line"),
            ("HTTP/1.1 2x0 OK\r\n\r\n", "three digits"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "conflicting Content-Length"),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "not a number"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "repeated"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\t\r\n\r\nok", "tab after"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n", "whitespace"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0; a\r\n\r\n", "no name"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", "trailer section"),
            ("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "obs-fold"),
            ("HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "malformed"),
            ("HTTP/1.1 200 OK\r\nX-A: a\u{01}b\r\n\r\n", "control byte"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not hexadecimal"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n", "not followed by CRLF"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n", "too large"),
            ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "switched protocols"),
        ]
    )
    func malformed(text: String, reason: String) throws {
        let error = #expect(throws: HTTPParseFailure.self) { try parse(text) }
        #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "no error")")
    }

    @Test("a head longer than the limit is refused before it is all read")
    func oversizedHead() throws {
        let text = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Padding: \(String(repeating: "p", count: 100))\r\n", count: 900)
        let error = #expect(throws: HTTPParseFailure.self) { try parse(text, split: 4096) }
        #expect(error?.reason.contains("longer than") == true)
    }

    @Test("a close in the middle of a response, or before it, is an error; a close-delimited body is not")
    func closedEarly() throws {
        #expect(throws: HTTPParseFailure.self) {
            try parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", close: true)
        }
        #expect(throws: HTTPParseFailure.self) { try parse("HTTP/1.1 200", close: true) }
        var idle = UpstreamResponseParser()
        #expect(try idle.connectionClosed() == nil)
    }

    @Test("chunk size lines are written in lowercase hex without leading zeros")
    func chunkSizeLine() {
        for (size, line) in [(1, "1\r\n"), (15, "f\r\n"), (16, "10\r\n"), (600, "258\r\n"), (1_048_576, "100000\r\n")] {
            var buffer = ByteBuffer()
            buffer.writeChunkSizeLine(size)
            #expect(String(buffer: buffer) == line)
        }
    }
}

/// A small deterministic generator (SplitMix64), so a failing random case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
