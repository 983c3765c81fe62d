/// The header names the proxy treats specially, recognised by one comparison per header.
///
/// Forwarding rewrites every head twice (request and response). Doing that with `HTTPHeaders`'
/// `contains`/`remove`/`replaceOrAdd` scans the whole list once per name (a dozen scans, each
/// comparing case-insensitively); classifying each header once and copying the rest is one pass.
enum ProxyHeaderName {
    case connection, keepAlive, proxyConnection, proxyAuthenticate, proxyAuthorization, te, trailer, transferEncoding, upgrade
    case host, expect, contentLength, forwarded, xForwardedFor, xForwardedProto, xForwardedHost, xRequestID, xStranglerUpstream
    /// The marker on the proxy's own copies of a request; never taken from a client.
    case xStranglerShadow
    /// End-to-end headers passed through untouched; named because a comparison reads them.
    case contentType, contentEncoding
    /// A name with an underscore (`X_Forwarded_For`). Request headers of this class are dropped,
    /// as nginx does by default (`underscores_in_headers off`): CGI-style servers (WSGI, Rack,
    /// PHP) turn both `-` and `_` into `_`, so `X_Strangler_Shadow` would reach them as the
    /// proxy's own `X-Strangler-Shadow`, past the check that drops a client's copy of it.
    case underscored
    case other

    init(_ name: String) {
        var name = name
        self = name.withUTF8 { Self.classify($0) }
    }

    /// Classifies a name given as bytes (an upstream response's header line).
    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self = Self.classify(bytes)
    }

    /// Headers that describe one hop's connection rather than the message (RFC 9110 §7.6.1).
    var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .proxyAuthenticate, .proxyAuthorization, .te, .trailer, .transferEncoding,
            .upgrade:
            true
        default:
            false
        }
    }

    private static func classify(_ bytes: UnsafeBufferPointer<UInt8>) -> ProxyHeaderName {
        let known = classifyKnown(bytes)
        // None of the known names has an underscore, so only the rest need the scan.
        guard known == .other else { return known }
        for byte in bytes where byte == UInt8(ascii: "_") { return .underscored }
        return .other
    }

    private static func classifyKnown(_ bytes: UnsafeBufferPointer<UInt8>) -> ProxyHeaderName {
        // The length picks the one or two candidates worth comparing.
        switch bytes.count {
        case 2: return matches(bytes, "te") ? .te : .other
        case 4: return matches(bytes, "host") ? .host : .other
        case 6: return matches(bytes, "expect") ? .expect : .other
        case 7: return matches(bytes, "upgrade") ? .upgrade : matches(bytes, "trailer") ? .trailer : .other
        case 9: return matches(bytes, "forwarded") ? .forwarded : .other
        case 10: return matches(bytes, "connection") ? .connection : matches(bytes, "keep-alive") ? .keepAlive : .other
        case 12: return matches(bytes, "x-request-id") ? .xRequestID : matches(bytes, "content-type") ? .contentType : .other
        case 14: return matches(bytes, "content-length") ? .contentLength : .other
        case 15: return matches(bytes, "x-forwarded-for") ? .xForwardedFor : .other
        case 16:
            if matches(bytes, "proxy-connection") { return .proxyConnection }
            if matches(bytes, "x-forwarded-host") { return .xForwardedHost }
            return matches(bytes, "content-encoding") ? .contentEncoding : .other
        case 17:
            return matches(bytes, "transfer-encoding")
                ? .transferEncoding : matches(bytes, "x-forwarded-proto") ? .xForwardedProto : .other
        case 18: return matches(bytes, "proxy-authenticate") ? .proxyAuthenticate : matches(bytes, "x-strangler-shadow") ? .xStranglerShadow : .other
        case 19: return matches(bytes, "proxy-authorization") ? .proxyAuthorization : .other
        case 20: return matches(bytes, "x-strangler-upstream") ? .xStranglerUpstream : .other
        default: return .other
        }
    }

    /// ASCII case-insensitive equality with `lowercase`, which has the same length.
    @inline(__always)
    private static func matches(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for index in 0..<bytes.count {
            let byte = bytes[index]
            let want = expected[index]
            // Folding with 0x20 is only case-folding for letters; anything else must match exactly.
            if byte != want && !(want >= UInt8(ascii: "a") && want <= UInt8(ascii: "z") && byte | 0x20 == want) { return false }
        }
        return true
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> Substring {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return slice
    }
}
