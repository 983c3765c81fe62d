/// Where the path is in a request target, by the target's form (RFC 9112 §3.2).
///
/// - origin-form, `/path?query`: the path is the bytes before `?`;
/// - absolute-form, `http://host/path?query` (scheme `http` or `https`, any case): the path
///   after the authority, as nginx routes such a request; `/` when it has none
///   (`http://host?q`);
/// - asterisk-form, `*`: no path, for OPTIONS only;
/// - anything else, authority-form (`host:port`, CONNECT's) included, is refused: the proxy
///   does not tunnel.
///
/// Only routing reads the path found here; the target is forwarded as the client sent it.
public enum RequestTarget {
    /// The path's offsets in `target`, up to (not including) any `?`. Empty for an absolute
    /// URL with no path, which routes as `/`; nil for `OPTIONS *`, which no route matches.
    public static func path(in target: UnsafeRawBufferPointer, method: String) throws(PathRefusal) -> Range<Int>? {
        guard let first = target.first else {
            throw PathRefusal(.unsupportedForm, "the request target is empty")
        }
        if first == UInt8(ascii: "/") {
            return 0..<queryStart(target, from: 0)
        }
        if target.count == 1, first == UInt8(ascii: "*") {
            guard method == "OPTIONS" else {
                throw PathRefusal(.unsupportedForm, #"the request target "*" is only for OPTIONS"#)
            }
            return nil
        }
        guard let authorityStart = schemeLength(target) else {
            if method == "CONNECT" {
                throw PathRefusal(.unsupportedForm, "CONNECT (a tunnel to host:port) is not supported by this proxy")
            }
            throw PathRefusal(
                .unsupportedForm,
                #"the request target must be a path starting with "/" or an absolute http:// or https:// URL"#
            )
        }
        var index = authorityStart
        while index < target.count {
            let byte = target[index]
            if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") { break }
            guard isAuthorityByte(byte) else {
                // A `\` here is a path separator to a WHATWG URL parser (`http://x\inventory/1`):
                // an upstream using one would see a different path than this proxy routes on.
                throw PathRefusal(.invalidAuthority, "the request target's authority has a byte no authority has (0x\(hex(byte)))")
            }
            index += 1
        }
        guard index > authorityStart else {
            throw PathRefusal(.invalidAuthority, "the request target's URL has no host")
        }
        if index < target.count, target[index] == UInt8(ascii: "#") {
            throw PathRefusal(.fragment, "the request target has a fragment (#); a request target has none")
        }
        return index..<queryStart(target, from: index)
    }

    /// The index of the first `?` at or after `start`, or the end.
    private static func queryStart(_ target: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        while index < target.count, target[index] != UInt8(ascii: "?") { index += 1 }
        return index
    }

    /// The length of `http://` or `https://` at the start of `target`, in any case.
    private static func schemeLength(_ target: UnsafeRawBufferPointer) -> Int? {
        func lowercased(_ byte: UInt8) -> UInt8 { byte | 0x20 }
        guard target.count >= 7, lowercased(target[0]) == UInt8(ascii: "h"), lowercased(target[1]) == UInt8(ascii: "t"),
            lowercased(target[2]) == UInt8(ascii: "t"), lowercased(target[3]) == UInt8(ascii: "p")
        else { return nil }
        var index = 4
        if lowercased(target[index]) == UInt8(ascii: "s") { index += 1 }
        guard index + 3 <= target.count, target[index] == UInt8(ascii: ":"), target[index + 1] == UInt8(ascii: "/"),
            target[index + 2] == UInt8(ascii: "/")
        else { return nil }
        return index + 3
    }

    /// RFC 3986 authority bytes: unreserved, sub-delims, `:`, `@`, `[`, `]` and `%`.
    private static func isAuthorityByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "$"),
            UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"),
            UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "["),
            UInt8(ascii: "]"), UInt8(ascii: "%"):
            true
        default:
            false
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
