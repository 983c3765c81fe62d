/// A route's `match.host`: one host name, or `*.` and a domain for any one label under it.
///
/// Written and compared in lower case without a trailing dot; the request's `Host` is taken the
/// same way and without its port, so `Shop.Example.com.:8443` matches `shop.example.com`.
/// `*.example.com` takes `a.example.com` but neither `example.com` nor `a.b.example.com`.
public struct HostPattern: Sendable, Hashable, CustomStringConvertible {
    /// The name in lower case, without the `*.` of a wildcard.
    public let name: String
    /// Whether one label stands before `name`.
    public let isWildcard: Bool

    /// The pattern `text` spells, or nil when it is not a host name or a `*.` wildcard of one.
    public init?(_ text: String) {
        var text = text.lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        let wildcard = text.hasPrefix("*.")
        if wildcard { text.removeFirst(2) }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        guard !text.isEmpty, text.utf8.count <= 253,
            labels.allSatisfy({ label in
                !label.isEmpty && label.utf8.count <= 63
                    && label.utf8.allSatisfy { Self.isLabelByte($0) }
            })
        else { return nil }
        name = text
        isWildcard = wildcard
    }

    /// As written in a route table.
    public var description: String { isWildcard ? "*.\(name)" : name }

    /// Whether a request's `Host` value (its bytes as sent, port included) matches.
    public func matches<Bytes: BidirectionalCollection<UInt8>>(host value: Bytes) -> Bool {
        Self.matches(host: value, name: name.utf8, wildcard: isWildcard)
    }

    /// Whether a `Host` value matches the pattern `name` (lower case, no trailing dot), with
    /// one label before it when `wildcard`: ``matches(host:)`` for the matcher's flat copy.
    static func matches<Bytes: BidirectionalCollection<UInt8>, Name: Collection<UInt8>>(
        host value: Bytes,
        name expected: Name,
        wildcard: Bool
    ) -> Bool {
        // The port goes: after an IPv6 literal's "]", or after the last ":" of a name.
        var end = value.endIndex
        if value.first == UInt8(ascii: "[") {
            if let close = value.firstIndex(of: UInt8(ascii: "]")) { end = value.index(after: close) }
        } else if let colon = value.lastIndex(of: UInt8(ascii: ":")) {
            end = colon
        }
        var host = value[value.startIndex..<end]
        if host.last == UInt8(ascii: ".") { host = host.dropLast() }
        if !wildcard { return equalIgnoringCase(host, expected) }
        // One label, a dot, then the name.
        guard host.count > expected.count + 1 else { return false }
        let suffixStart = host.index(host.endIndex, offsetBy: -expected.count)
        let dot = host.index(before: suffixStart)
        let label = host[host.startIndex..<dot]
        return host[dot] == UInt8(ascii: ".") && !label.contains(UInt8(ascii: "."))
            && equalIgnoringCase(host[suffixStart...], expected)
    }

    /// Whether every host this pattern takes, `other` takes too.
    public func implies(_ other: HostPattern) -> Bool {
        switch (isWildcard, other.isWildcard) {
        case (false, false), (true, true): name == other.name
        case (false, true): other.matches(host: name.utf8)
        case (true, false): false
        }
    }

    /// Whether one host can match both.
    public func overlaps(_ other: HostPattern) -> Bool {
        implies(other) || other.implies(self)
    }

    private static func isLabelByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }

    /// `lhs` (as sent) equals `lower` (already lower case) with ASCII letters folded.
    private static func equalIgnoringCase<A: Collection<UInt8>, B: Collection<UInt8>>(_ lhs: A, _ lower: B) -> Bool {
        lhs.count == lower.count
            && zip(lhs, lower).allSatisfy { byte, expected in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 == expected : byte == expected
            }
    }
}
