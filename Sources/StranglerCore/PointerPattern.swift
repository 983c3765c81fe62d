/// A JSON pointer pattern from `compare` rules: RFC 6901 segments, where `*` matches any one segment.
public struct PointerPattern: Sendable, Hashable {
    /// The pattern's segments, still escaped (`~0`, `~1`) like the pointers they are matched against.
    let segments: [Substring]

    /// Parses pattern text such as `/items/*/unitPrice`, its segments left escaped. `""` is the
    /// whole document, and so covers every body pointer.
    public init(_ text: String) {
        segments = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { $0 }
    }

    /// True when `pointer` is the pattern's location or inside it.
    public func covers(_ pointer: [String]) -> Bool {
        guard segments.count <= pointer.count else { return false }
        for (pattern, segment) in zip(segments, pointer) where pattern != "*" && pattern != segment {
            return false
        }
        return true
    }

    /// True when the pointer text (`/items/0/name`) is the pattern's location or inside it. The
    /// status (`""`) and header names (no leading `/`) are never covered.
    public func covers(pointer: String) -> Bool {
        guard pointer.hasPrefix("/") else { return false }
        return covers(pointer.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init))
    }

    /// True when `pointer` is exactly the pattern's location.
    public func matches(_ pointer: [String]) -> Bool {
        segments.count == pointer.count && covers(pointer)
    }

    /// Escapes one key for use as a pointer segment (RFC 6901 §3).
    public static func escape(_ key: String) -> String {
        // A byte scan: `String.contains(_:)` goes through Foundation's string search, which cost
        // more than the rest of a comparison.
        guard key.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return key }
        return key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    /// Joins escaped segments into a pointer ("" for the whole document).
    public static func join(_ segments: [String]) -> String {
        segments.isEmpty ? "" : "/" + segments.joined(separator: "/")
    }
}
