/// The parts of an upstream URL the data plane needs.
///
/// The base path is written into every request line sent upstream, so anything that could end
/// that line or split it (CR, LF, a space) is refused here: a table must never be able to inject
/// headers. Only characters RFC 3986 allows in a path may appear unencoded.
struct UpstreamURL {
    var host: String
    var port: Int
    var basePath: String
    /// `https`: the proxy speaks TLS to it.
    var isTLS: Bool

    enum Parsed {
        case success(UpstreamURL)
        /// A URL, but one the data plane can't use; the text says why.
        case failure(String)
    }

    /// nil when the text is not a URL at all; `.failure` when it is one we cannot use.
    static func parse(_ text: String) -> Parsed? {
        if let reason = unsafeCharacter(in: text) { return .failure(reason) }
        guard let schemeEnd = text.range(of: "://") else { return nil }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            return .failure("unsupported scheme \"\(scheme.prefix(16))\"; use http:// or https://")
        }
        let isTLS = scheme == "https"
        var rest = text[schemeEnd.upperBound...]
        var basePath = ""
        if let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
            basePath = String(rest[end...])
            rest = rest[..<end]
        }
        if basePath.contains("?") { return .failure("must not have a query (\"?\"); requests keep their own") }
        if basePath.contains("#") { return .failure("must not have a fragment (\"#\")") }
        if let reason = pathProblem(basePath) { return .failure(reason) }
        while basePath.hasSuffix("/") { basePath.removeLast() }
        if rest.contains("@") { return .failure("must not contain credentials (\"user@\"); upstreams get the client's own headers") }
        var host = String(rest)
        var port = isTLS ? 443 : 80
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return .failure("an IPv6 address needs its closing \"]\", as in http://[::1]:9000") }
            let after = host[host.index(after: close)...]
            let inner = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let parsed = portNumber(after.dropFirst()) else { return .failure("port must be a number from 1 to 65535") }
                port = parsed
            } else if !after.isEmpty {
                return .failure("only a port may follow an IPv6 address, as in http://[::1]:9000")
            }
            guard !inner.isEmpty, inner.contains(":"), inner.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return .failure("\"[\(inner.prefix(64))]\" is not an IPv6 address")
            }
            host = inner
        } else {
            if let colon = host.lastIndex(of: ":") {
                guard let parsed = portNumber(host[host.index(after: colon)...]) else {
                    return .failure("port must be a number from 1 to 65535")
                }
                port = parsed
                host = String(host[..<colon])
            }
            guard !host.isEmpty else { return nil }
            // A host name or an IPv4 address: letters, digits, "-", "." and "_" (used by some
            // internal DNS names). Anything else would be a different URL to every other reader.
            guard host.unicodeScalars.allSatisfy({ isHostCharacter($0) }) else {
                return .failure("host \"\(host.prefix(64))\" may use only letters, digits, \"-\", \".\" and \"_\"; an IPv6 address goes in brackets")
            }
        }
        return .success(UpstreamURL(host: host, port: port, basePath: basePath, isTLS: isTLS))
    }

    /// Why `text` can't be a URL in a request line: a control character, a space or a non-ASCII
    /// character, named with where it is.
    private static func unsafeCharacter(in text: String) -> String? {
        for (offset, scalar) in text.unicodeScalars.enumerated() {
            let value = scalar.value
            if value == 0x20 {
                return "has a space at character \(offset + 1); percent-encode it as %20"
            }
            if value < 0x20 || value == 0x7F {
                let name =
                    switch value {
                    case 0x0D: "a carriage return (CR)"
                    case 0x0A: "a line feed (LF)"
                    case 0x09: "a tab"
                    default: "a control character"
                    }
                return "has \(name) at character \(offset + 1), which would break the request line sent upstream; control characters are not allowed"
            }
            if value > 0x7E {
                return "has a non-ASCII character at character \(offset + 1); percent-encode it as UTF-8 (%XX)"
            }
        }
        return nil
    }

    /// Why `path` is not a valid RFC 3986 path: a character it may not hold unencoded, or a
    /// broken percent-escape.
    private static func pathProblem(_ path: String) -> String? {
        let bytes = Array(path.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, isHex(bytes[index + 1]), isHex(bytes[index + 2])
                else {
                    return "the path has \"%\" without two hex digits after it; write a literal \"%\" as %25"
                }
                index += 3
                continue
            }
            if !isPathCharacter(byte) {
                return
                    "the path has \"\(Character(Unicode.Scalar(byte)))\", which must be percent-encoded (%\(String(byte, radix: 16, uppercase: true)))"
            }
            index += 1
        }
        return nil
    }

    private static func portNumber(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text),
            (1...65535).contains(value)
        else { return nil }
        return value
    }

    private static func isHostCharacter(_ scalar: Unicode.Scalar) -> Bool {
        CharacterSetASCII.isAlnum(scalar) || scalar == "-" || scalar == "." || scalar == "_"
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    /// RFC 3986 `pchar` and "/": unreserved, sub-delims, ":" and "@".
    private static func isPathCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            true
        case UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"): true
        default: false
        }
    }
}
