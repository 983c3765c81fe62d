import NIOHTTP1
import PropertyBased
import StranglerTestSupport

/// Generators of mostly-valid HTTP/1.x byte streams with targeted mutations, for the parser
/// cross-check: the places where two parsers are known to read the same bytes differently
/// (framing headers, line endings, control bytes, chunk syntax, versions, methods, targets).
///
/// Half the messages are left valid (with varied but valid choices: methods, framings, chunk
/// sizes, extensions, trailers, keep-alive); in the other half, each mutation site fires with
/// its own small chance, so that a message usually gets deep before a mutation lands. Built on
/// PropertyBased's generators and random number generator; the cross-check runs them with a
/// seed per case, so any case replays alone.
enum CrossCheckGen {
    /// A stream of one to three requests, cut into reads.
    static let requests = Generator<CrossCheckInput, Shrink.None<CrossCheckInput>> { rng in
        var draw = Draw(rng: rng)
        defer { rng = draw.rng }
        draw.clean = draw.chance(0.5)
        // Before the first request line: an empty line (which RFC 9112 §2.2 lets a server
        // skip) or whitespace (which it does not).
        var bytes = Array(draw.mutation([(95, ""), (5, draw.pick(["\r\n", "\r\n\r\n", " ", "\t", "\n"]))]).utf8)
        for _ in 0..<draw.weighted([(6, 1), (3, 2), (1, 3)]) {
            draw.clean = draw.chance(0.5)
            bytes += request(&draw)
            // A client's stray CRLF after a message, which a server may skip.
            if draw.chance(0.06) { bytes += draw.pick(["\r\n", "\r\n\r\n"]).utf8 }
        }
        return CrossCheckInput(bytes: bytes, cuts: cuts(bytes.count, &draw))
    }

    /// One or two responses (an interim 1xx may come first), the methods of the requests they
    /// answer, cut into reads.
    static let responses = Generator<CrossCheckInput, Shrink.None<CrossCheckInput>> { rng in
        var draw = Draw(rng: rng)
        defer { rng = draw.rng }
        var bytes: [UInt8] = []
        var methods: [HTTPMethod] = []
        for _ in 0..<draw.weighted([(8, 1), (2, 2)]) {
            draw.clean = draw.chance(0.5)
            let method = draw.weighted([(16, HTTPMethod.GET), (3, .HEAD), (2, .POST)])
            methods.append(method)
            bytes += response(for: method, &draw)
        }
        // Bytes after the last answer: junk, or a response nobody asked for.
        if draw.mutationChance(0.05) { bytes += draw.pick(["\r\n", "x", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]).utf8 }
        return CrossCheckInput(bytes: bytes, cuts: cuts(bytes.count, &draw), methods: methods)
    }

    // MARK: - Requests

    static func request(_ draw: inout Draw) -> [UInt8] {
        let method = draw.mutation([
            (
                90,
                draw.weighted([
                    (90, draw.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])),
                    (10, draw.pick(["TRACE", "PROPFIND", "M-SEARCH", "PURGE", "QUERY", "MKCALENDAR", "SOURCE"])),
                ])
            ),
            (4, "CONNECT"),
            (3, draw.pick(["BREW", "FOO", "GETS", "PRI"])),
            (3, draw.pick(["get", "Get", "post", "G@T", "GET\t", ""])),
        ])
        let target = draw.mutation([
            (
                90,
                draw.weighted([
                    (90, draw.pick(["/", "/orders/42", "/a/b?c=d&e=f", "/inv/SKU-1?x=1", "/%7Euser", "/a;p=1", "/a#frag", "//x", "/a{b}|c"])),
                    (
                        10,
                        draw.pick([
                            "http://shop.example/x", "https://shop.example:8443/y?z", "HTTP://SHOP/", "http://[::1]:80/a", "http://a?x", "http://a",
                        ])
                    ),
                ])
            ),
            (
                4,
                draw.pick([
                    "http://a@b/", "http:/x", "ftp://a/x", "http://a b/", "http://a/\u{e9}", "h2c://a/", "http://:80/", "shop.example:443", "*",
                ])
            ),
            (6, draw.pick(["/caf\u{e9}", "/a\u{7F}", "/a\u{1}", "/a\tb", "/a\\b", "/a?b=c d", "/\u{0}", "/a\"b", ""])),
        ])
        let version = draw.mutation([
            (95, draw.weighted([(85, "HTTP/1.1"), (15, "HTTP/1.0")])),
            (4, draw.pick(["HTTP/0.9", "HTTP/2.0", "HTTP/1.2", "HTTP/2", "http/1.1", "HTTP/1.1 ", "HTTP/1.10", "HTTP/11", "HTTP/1.x", "HTTP/1"])),
            (1, ""),
        ])
        var line = method + draw.mutation([(97, " "), (3, draw.pick(["  ", "\t"]))]) + target
        if !version.isEmpty || draw.chance(0.5) { line += draw.mutation([(97, " "), (3, draw.pick(["  ", "\t"]))]) + version }
        var bytes = Array(line.utf8) + lineEnd(&draw)

        var fields: [(String, String)] = []
        // Host: one valid one, or none, two, or an invalid one.
        switch draw.mutation([(85, 0), (5, 1), (3, 2), (7, 3)]) {
        case 0: fields.append(("Host", draw.pick(["shop.example", "shop.example:8080", "127.0.0.1", "[::1]:80"])))
        case 1: break
        case 2: fields += [("Host", "a.example"), ("Host", draw.pick(["b.example", "a.example"]))]
        default: fields.append(("Host", draw.pick(["a b/c", "a/b", "user@a", "", "a:b:c", "caf\u{e9}", "[::1", "a\\b", "\"a\""])))
        }
        fields += headers(&draw, request: true)
        let body = framing(&draw, fields: &fields, request: true)
        if draw.chance(0.3) { fields.shuffle(using: &draw.rng) }
        bytes += headerSection(fields, &draw)
        return bytes + body
    }

    // MARK: - Responses

    static func response(for method: HTTPMethod, _ draw: inout Draw) -> [UInt8] {
        var bytes: [UInt8] = []
        if draw.chance(0.1) {
            bytes +=
                draw.pick([
                    "HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
                    "HTTP/1.1 102 Processing\r\n\r\n",
                ]).utf8
        }
        if draw.mutationChance(0.05) {
            bytes +=
                draw.pick([
                    "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n", "HTTP/1.1 199 Odd\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "HTTP/1.1 100 Continue\r\nBad Header: x\r\n\r\n", "HTTP/1.0 100 Continue\r\n\r\n", "HTTP/1.1 100 Continue\r\n",
                ]).utf8
        }
        let version = draw.mutation([
            (95, draw.weighted([(85, "HTTP/1.1"), (15, "HTTP/1.0")])),
            (5, draw.pick(["HTTP/2", "HTTP/2.0", "http/1.1", "HTTP/1.2", "HTTP/0.9", "HTTP/1.1 "])),
        ])
        let status = draw.mutation([
            (95, draw.weighted([(60, "200"), (20, draw.pick(["201", "204", "206", "301", "304", "404", "500", "502"]))])),
            (5, draw.pick(["101", "100", "199", "099", "600", "999", "20", "2000", "2x0", " 200", "-200"])),
        ])
        let reason = draw.mutation([
            (95, draw.weighted([(80, " " + draw.pick(["OK", "Not Found", "Whatever it is", "\u{e9}t\u{e9}"])), (10, " "), (10, "")])),
            (5, " " + draw.pick(["O\tK", "O\u{1}K", "O\u{7F}K", "OK  ", "\u{0}"])),
        ])
        bytes += Array((version + " " + status + reason).utf8) + lineEnd(&draw)
        var fields = headers(&draw, request: false)
        var body = framing(&draw, fields: &fields, request: false)
        // A HEAD answer, or a 204 or 304, whose headers speak of a body: without the bytes
        // (as it should be), or with them.
        let code = Int(status) ?? 0
        if method == .HEAD || code == 204 || code == 304 || code < 200, !draw.mutationChance(0.3) { body = [] }
        bytes += headerSection(fields, &draw)
        return bytes + body
    }

    // MARK: - Shared parts

    /// A line's end: CRLF, or a bare LF or CR.
    static func lineEnd(_ draw: inout Draw) -> [UInt8] {
        Array(draw.mutation([(97, "\r\n"), (3, draw.pick(["\n", "\r", "\r\r\n", "\n\r"]))]).utf8)
    }

    /// Zero to four ordinary header lines, some of which decide the connection's fate.
    static func headers(_ draw: inout Draw, request: Bool) -> [(String, String)] {
        var fields: [(String, String)] = []
        for _ in 0..<draw.weighted([(3, 0), (4, 1), (3, 2), (2, 4)]) {
            fields.append(
                draw.weighted([
                    (10, ("Accept", draw.pick(["*/*", "application/json", "text/html;q=0.9, */*;q=0.1"]))),
                    (6, (request ? "User-Agent" : "Server", "cross/1.0")),
                    (6, ("X-Trace", draw.pick(["abc", "", "  padded  ", "a\tb", "\u{e9}"]))),
                    (4, (request ? "Cookie" : "Set-Cookie", "a=b; c=d")),
                    (
                        6,
                        (
                            "Connection",
                            draw.pick(["keep-alive", "close", "Upgrade", "keep-alive, Upgrade", "close, x-hop", "Keep-Alive", "upgrade, close"])
                        )
                    ),
                    (2, ("Upgrade", draw.pick(["websocket", "h2c"]))),
                    (2, ("Expect", "100-continue")),
                    (2, ("TE", "trailers")),
                    (2, ("Keep-Alive", "timeout=5")),
                    (2, (draw.pick(["X_Under", "Content_Length", "Transfer_Encoding"]), "1")),
                ])
            )
        }
        return fields
    }

    /// Adds framing headers to `fields` and returns the body that follows the head: what the
    /// headers say, or with mutations in the values and in the body.
    static func framing(_ draw: inout Draw, fields: inout [(String, String)], request: Bool) -> [UInt8] {
        let content = payload(&draw)
        let kind = draw.mutation([(95, draw.weighted([(request ? 40 : 15, 0), (30, 1), (25, 2)])), (5, 3)])
        switch kind {
        case 0:
            // No framing headers: no body for a request; for a response, the body runs to the close.
            return request && !draw.mutationChance(0.2) ? [] : content
        case 1:
            fields.append(("Content-Length", contentLength(content.count, &draw)))
            if draw.mutationChance(0.06) {
                fields.append(("Content-Length", draw.pick([String(content.count), String(content.count + 1), "0"])))
            }
            return mismatched(content, &draw)
        case 2:
            fields.append(("Transfer-Encoding", transferEncoding(&draw)))
            if draw.mutationChance(0.04) { fields.append(("Transfer-Encoding", draw.pick(["chunked", "gzip"]))) }
            return chunked(content, &draw)
        default:
            // Both: the classic smuggling pair, in either order.
            let pair = [("Content-Length", contentLength(content.count, &draw)), ("Transfer-Encoding", transferEncoding(&draw))]
            fields += draw.chance(0.5) ? pair : pair.reversed()
            return draw.chance(0.5) ? chunked(content, &draw) : content
        }
    }

    static func contentLength(_ length: Int, _ draw: inout Draw) -> String {
        draw.mutation([
            (85, String(length)),
            (
                15,
                draw.pick([
                    "0\(length)", "+\(length)", "-\(length)", " \(length) ", "\(length), \(length)", "\(length),\(length)",
                    "\(length), \(length + 1)",
                    "\(length) \(length)", "0x\(String(length, radix: 16))", "\(length).0", "", "99999999999999999999", "\(length)\t",
                    "1e1", "\(length);", "\t\(length)", "000000000000000000\(length)",
                ])
            ),
        ])
    }

    static func transferEncoding(_ draw: inout Draw) -> String {
        draw.mutation([
            (75, draw.weighted([(90, "chunked"), (10, draw.pick(["Chunked", "CHUNKED", " chunked", "chunked "]))])),
            (
                25,
                draw.pick([
                    "chunked\t", "\tchunked", "xchunked", "chunkedx", "chunked, gzip", "gzip, chunked", "gzip,chunked", "gzip", "identity",
                    "chunked;q=0",
                    "chunked,", ",chunked", "chun ked", "chunked, chunked", "\u{0B}chunked", "", "chunked\r\n\tgzip",
                ])
            ),
        ])
    }

    /// A body of 0 to 40 bytes, mostly text, sometimes with CRLFs and bytes of any value.
    static func payload(_ draw: inout Draw) -> [UInt8] {
        let count = draw.weighted([(3, 0), (10, Int.random(in: 1...12, using: &draw.rng)), (4, Int.random(in: 13...40, using: &draw.rng))])
        return (0..<count).map { _ in
            draw.weighted([
                (20, UInt8.random(in: 0x61...0x7A, using: &draw.rng)), (2, draw.pick([0x0D, 0x0A, 0x30])),
                (1, UInt8.random(in: 0...255, using: &draw.rng)),
            ])
        }
    }

    /// The content, or a byte short or long of what a length said.
    static func mismatched(_ content: [UInt8], _ draw: inout Draw) -> [UInt8] {
        switch draw.mutation([(94, 0), (3, 1), (3, 2)]) {
        case 1: Array(content.dropLast())
        case 2: content + Array("X".utf8)
        default: content
        }
    }

    /// The content in chunks of random sizes, with extensions and trailers, and mutations in
    /// the size lines, the data's ends, the last chunk and the trailers.
    static func chunked(_ content: [UInt8], _ draw: inout Draw) -> [UInt8] {
        var bytes: [UInt8] = []
        var offset = 0
        while offset < content.count {
            let size = min(Int.random(in: 1...16, using: &draw.rng), content.count - offset)
            let declared = size + draw.mutation([(98, 0), (1, -1), (1, 1)])
            bytes += Array((sizeDigits(declared, &draw) + chunkExtension(&draw)).utf8) + lineEnd(&draw)
            bytes += content[offset..<offset + size]
            bytes += Array(draw.mutation([(97, "\r\n"), (3, draw.pick(["\n", "", "\r", "X\r\n"]))]).utf8)
            offset += size
        }
        bytes += Array(
            (draw.mutation([(90, draw.pick(["0", "00"])), (10, draw.pick(["000000000000000000", "0 ", "0x0", " 0"]))]) + chunkExtension(&draw)).utf8
        )
        bytes += lineEnd(&draw)
        if draw.chance(0.15) { bytes += Array(draw.pick(["X-Checksum: 42\r\n", "X-A: 1\r\nX-B: 2\r\n", "x-t:\tv \r\n"]).utf8) }
        if draw.mutationChance(0.08) {
            bytes += Array(draw.pick(["X T: 1\r\n", "X-A: 1\r\n folded\r\n", "X-A: 1\n", "Content-Length: 5\r\n", ": v\r\n", "X-A: \u{1}\r\n"]).utf8)
        }
        bytes += Array(draw.mutation([(95, "\r\n"), (5, draw.pick(["\n", "", "\r"]))]).utf8)
        return bytes
    }

    static func sizeDigits(_ size: Int, _ draw: inout Draw) -> String {
        let hex = String(size, radix: 16, uppercase: draw.chance(0.3))
        return draw.mutation([
            (90, draw.weighted([(90, hex), (10, "0\(hex)")])),
            (
                10,
                draw.pick([
                    "00000000000000000\(hex)", "0x\(hex)", "+\(hex)", "-\(hex)", " \(hex)", "\(hex) ", "\(hex)\t", "\(hex)g", "ffffffffffffffffff",
                ])
            ),
        ])
    }

    static func chunkExtension(_ draw: inout Draw) -> String {
        draw.mutation([
            (95, draw.weighted([(85, ""), (15, draw.pick([";a", ";a=b", ";a=\"q s\"", ";a=b;c=d", ";name=value", ";a=\"\\\"\""]))])),
            (
                5,
                draw.pick([" ;a", "\t;a", "; a", ";a =b", ";", ";=b", ";a=", ";a=\"open", ";a b", ";a=\u{1}", ";a=b c", ";\u{e9}", ";a=\"\u{e9}\""])
            ),
        ])
    }

    /// Header lines and the blank line, each line possibly mutated: whitespace or control bytes
    /// in the name, the value or around the colon, obs-fold, a bare LF.
    static func headerSection(_ fields: [(String, String)], _ draw: inout Draw) -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, value) in fields {
            var name = name
            var value = value
            var separator = draw.weighted([(90, ": "), (10, draw.pick([":", ":\t", ":  "]))])
            switch draw.mutation([(92, 0), (2, 1), (2, 2), (2, 3), (2, 4)]) {
            case 1: name = draw.pick([name + " ", name + "\t", " " + name, "\t" + name])
            case 2:
                name = draw.pick([
                    name + "\u{0}", "X\u{1}" + name, name + "\u{e9}", "", "(" + name + ")", name + "\u{7F}", name + "/1", "@" + name, "X Y",
                    name + "\r",
                ])
            case 3: separator = "::"
            case 4:
                value = draw.pick([
                    value + " ", "\t" + value, value + "\u{0}", value + "\u{1}", value + "\u{7F}", value + "\u{e9}", value + "\r",
                    value + "\rX", value + "\r\n more", value + "\r\n\tmore", value + "\u{0B}", "\u{0C}" + value,
                ])
            default: break
            }
            bytes += Array((name + separator + value).utf8) + lineEnd(&draw)
        }
        return bytes + lineEnd(&draw)
    }

    /// Where the bytes are cut into reads: often not at all, else at one to five places.
    static func cuts(_ count: Int, _ draw: inout Draw) -> [Int] {
        guard count > 1, draw.chance(0.4) else { return [] }
        let cuts = (0..<Int.random(in: 1...5, using: &draw.rng)).map { _ in Int.random(in: 1..<count, using: &draw.rng) }
        return Array(Set(cuts)).sorted()
    }
}

/// Weighted choices from a PropertyBased random number generator, with mutations switched off
/// for a message that is to stay valid.
struct Draw {
    var rng: any SeededRandomNumberGenerator
    /// Whether the message being generated stays valid: ``mutation(_:)`` then takes its first
    /// option, and ``mutationChance(_:)`` never fires.
    var clean = false

    mutating func chance(_ probability: Float) -> Bool {
        Gen.bool(probability).run(using: &rng)
    }

    mutating func pick<Element: Sendable>(_ options: [Element]) -> Element {
        Gen.element(of: options).run(using: &rng)!
    }

    /// One of the values, with the chance of each in proportion to its weight.
    mutating func weighted<Value>(_ options: [(Int, Value)]) -> Value {
        var pick = Int.random(in: 0..<options.reduce(0) { $0 + $1.0 }, using: &rng)
        for (weight, value) in options {
            if pick < weight { return value }
            pick -= weight
        }
        return options[options.count - 1].1
    }

    /// A mutation site: the first option is the valid one; the others are mutations, taken only
    /// in a message that is not to stay valid.
    mutating func mutation<Value>(_ options: [(Int, Value)]) -> Value {
        let choice = weighted(options)
        return clean ? options[0].1 : choice
    }

    /// A mutation that happens with this chance, in a message that is not to stay valid.
    mutating func mutationChance(_ probability: Float) -> Bool {
        let fires = chance(probability)
        return fires && !clean
    }
}
