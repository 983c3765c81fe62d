/// Puts a request path into the one spelling routes are matched on, so that every spelling of a
/// resource reaches the same route.
///
/// The normal form of a path:
/// 1. percent-escapes of unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`) are decoded
///    (`/%69nventory` is `/inventory`); other escapes stay, with upper-case hex (`%c3` → `%C3`);
/// 2. dot segments are resolved (RFC 3986 §5.2.4, after step 1, so `%2e%2e` is `..`), except
///    that a `..` with nothing left to remove is refused rather than dropped;
/// 3. repeated `/` are merged (`//inventory` is `/inventory`); a trailing `/` stays.
///
/// Paths are case-sensitive (`/INVENTORY` is not `/inventory`), as RFC 3986 and the route
/// table say. The spellings that servers read differently (``PathAmbiguity``) are read as the
/// caller's reading says, and reported. Refused whatever the reading: an invalid escape (`%zz`,
/// `%4`), `%00`, a `#`, and a `..` above the root.
///
/// The normal path is written into ``path``, a buffer kept from call to call, so a connection
/// normalises without allocating once the buffer has grown to its paths' size. Most targets are
/// already normal (``isNormal(_:)``), and routing reads those as sent, without this.
public struct PathNormalizer: Sendable {
    /// The path the last ``normalize(_:reading:)`` wrote: starts with `/`, no query.
    public private(set) var path: [UInt8] = []

    /// A buffer that grew past this for a rare long path is not kept for the next one.
    public static let keptCapacityLimit = 4096

    /// A normaliser with an empty buffer. Keep one per connection, so that the buffer is reused.
    public init() {}

    /// Whether a target's path, up to any `?`, is already in normal form with nothing ambiguous
    /// in it: it starts with `/` and has no `%`, `\`, `;`, `#`, `//`, or `.` or `..` segment.
    /// One pass, no allocation: the check every request pays.
    public static func isNormal(_ target: UnsafeRawBufferPointer) -> Bool {
        let count = target.count
        guard count > 0, target[0] == UInt8(ascii: "/") else { return false }
        var index = 0
        while index < count {
            let byte = target[index]
            // Letters, the usual bytes, take one comparison; digits and most punctuation two.
            if byte < 64 {
                if Self.specialBelow64 & (1 &<< UInt64(byte)) != 0 {
                    switch byte {
                    case UInt8(ascii: "?"):
                        return true
                    case UInt8(ascii: "/"):
                        let next = index + 1
                        if next < count {
                            if target[next] == UInt8(ascii: "/") { return false }
                            if target[next] == UInt8(ascii: "."), startsDotSegment(target, at: next) { return false }
                        }
                    default:
                        // `%`, `;`, `#`
                        return false
                    }
                }
            } else if byte == UInt8(ascii: "\\") {
                return false
            }
            index += 1
        }
        return true
    }

    /// The bytes below 64 that ``isNormal(_:)`` looks at: `#`, `%`, `/`, `;`, `?`.
    private static let specialBelow64: UInt64 = 1 << 0x23 | 1 << 0x25 | 1 << 0x2F | 1 << 0x3B | 1 << 0x3F

    /// Whether the segment at `start` (its first byte is `.`) is `.` or `..`.
    private static func startsDotSegment(_ target: UnsafeRawBufferPointer, at start: Int) -> Bool {
        var end = start + 1
        if end < target.count, target[end] == UInt8(ascii: ".") { end += 1 }
        return end == target.count || target[end] == UInt8(ascii: "/") || target[end] == UInt8(ascii: "?")
    }

    /// Normalises `input`, a path up to any `?` (empty means `/`), into ``path``, reading its
    /// ambiguous spellings as `reading` says, and returns the ambiguous kinds it has under that
    /// reading. Under ``PathAmbiguity/all`` a path shows every kind it has under any reading.
    ///
    /// The literal reading of a `%2E` dot segment writes it as `%2E` or `%2E%2E`, so that the
    /// result is normal under that reading too: normalising it again changes nothing.
    @discardableResult
    public mutating func normalize(_ input: UnsafeRawBufferPointer, reading: PathAmbiguity) throws(PathRefusal) -> PathAmbiguity {
        if path.capacity > Self.keptCapacityLimit {
            path = []
        } else {
            path.removeAll(keepingCapacity: true)
        }
        let count = input.count
        guard count > 0, input[0] != UInt8(ascii: "?") else {
            path.append(UInt8(ascii: "/"))
            return []
        }
        guard input[0] == UInt8(ascii: "/") else {
            throw PathRefusal(.unsupportedForm, #"the request path does not start with "/""#)
        }
        let splitsEncodedSlash = reading.contains(.encodedSlash)
        let splitsBackslash = reading.contains(.backslash)
        let decodesEncodedDots = reading.contains(.encodedDot)
        let mergesBeforeDots = reading.contains(.dotDotAfterEmptySegment)
        let dropsParameters = reading.contains(.segmentParameter)

        var found: PathAmbiguity = []
        var index = 1
        var sawEmptySegment = false
        // Under the literal reading of `//..`, empty segments are kept while dot segments are
        // resolved (a `..` may remove one), and merged afterwards.
        var keptEmptySegment = false
        var needsTrailingSlash = false
        segments: while true {
            path.append(UInt8(ascii: "/"))
            var dots = 0
            var others = 0
            var encodedDot = false
            var inParameter = false
            var atEnd = true
            while index < count {
                let byte = input[index]
                var decoded = byte
                let escaped = byte == UInt8(ascii: "%")
                if escaped {
                    guard index + 2 < count, let high = Self.hexValue(input[index + 1]), let low = Self.hexValue(input[index + 2]) else {
                        throw PathRefusal(.invalidEscape, #"the request path has a "%" not followed by two hex digits"#)
                    }
                    decoded = high << 4 | low
                    guard decoded != 0 else {
                        throw PathRefusal(.encodedNul, "the request path has an encoded NUL byte (%00)")
                    }
                    index += 3
                } else {
                    index += 1
                    if byte == UInt8(ascii: "/") {
                        atEnd = false
                        break
                    }
                    if byte == UInt8(ascii: "?") {
                        index = count
                        break
                    }
                    if byte == UInt8(ascii: "#") {
                        throw PathRefusal(.fragment, "the request target has a fragment (#); a request target has none")
                    }
                    if byte == UInt8(ascii: ";") {
                        found.insert(.segmentParameter)
                        if dropsParameters { inParameter = true }
                    }
                }
                if escaped, decoded == UInt8(ascii: "/") {
                    found.insert(.encodedSlash)
                    if splitsEncodedSlash {
                        atEnd = false
                        break
                    }
                }
                if decoded == UInt8(ascii: "\\") {
                    found.insert(.backslash)
                    if splitsBackslash {
                        atEnd = false
                        break
                    }
                }
                if inParameter { continue }
                if escaped && !Self.isUnreserved(decoded) {
                    path.append(UInt8(ascii: "%"))
                    path.append(Self.hexDigit(decoded >> 4))
                    path.append(Self.hexDigit(decoded & 0x0F))
                    others += 1
                } else {
                    path.append(decoded)
                    if decoded == UInt8(ascii: ".") {
                        dots += 1
                        if escaped { encodedDot = true }
                    } else {
                        others += 1
                    }
                }
            }

            if dots + others == 0 {
                // An empty segment: `//`, or the end of a path with a trailing `/`.
                if atEnd {
                    path.removeLast()
                    needsTrailingSlash = true
                    break segments
                }
                sawEmptySegment = true
                if mergesBeforeDots { path.removeLast() } else { keptEmptySegment = true }
            } else if others == 0, dots <= 2 {
                if encodedDot { found.insert(.encodedDot) }
                if encodedDot && !decodesEncodedDots {
                    // A name; spelled all escaped so that it is not read as a dot segment again.
                    path.removeLast(dots)
                    for _ in 0..<dots {
                        path.append(UInt8(ascii: "%"))
                        path.append(UInt8(ascii: "2"))
                        path.append(UInt8(ascii: "E"))
                    }
                    needsTrailingSlash = false
                } else {
                    path.removeLast(dots + 1)
                    if dots == 2 {
                        if sawEmptySegment { found.insert(.dotDotAfterEmptySegment) }
                        guard let slash = path.lastIndex(of: UInt8(ascii: "/")) else {
                            throw PathRefusal(.aboveRoot, #"the request path has a ".." above the root"#)
                        }
                        path.removeSubrange(slash...)
                    }
                    // `/a/.` and `/a/b/..` are `/a/`.
                    needsTrailingSlash = true
                }
            } else {
                needsTrailingSlash = false
            }
            if atEnd { break }
        }
        if path.last != UInt8(ascii: "/"), needsTrailingSlash || path.isEmpty {
            path.append(UInt8(ascii: "/"))
        }
        if keptEmptySegment { mergeSlashes() }
        return found
    }

    /// Merges each run of `/` in ``path`` into one, in place.
    private mutating func mergeSlashes() {
        var write = 0
        var afterSlash = false
        for read in path.indices {
            let byte = path[read]
            if byte == UInt8(ascii: "/") {
                if afterSlash { continue }
                afterSlash = true
            } else {
                afterSlash = false
            }
            path[write] = byte
            write += 1
        }
        path.removeLast(path.count - write)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }

    /// RFC 3986 unreserved: the characters whose escapes mean the same as the characters.
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}
