/// The spellings in a request path that upstreams read differently, so that no one normal form
/// is right for all of them.
///
/// Each kind has two readings. The literal one is RFC 3986's: an encoded `/` or `\` is data
/// inside its segment, a dot segment spelled with `%2E` is a name, `..` after `//` removes the
/// empty segment, and `;` is data. The other is what common servers do instead: decode the
/// separator first (`%2F` → `/`), treat `\` as `/` (Windows servers, WHATWG URL parsers), decode
/// `%2E` before resolving dot segments, merge `//` before resolving `..` (nginx, Go's
/// `path.Clean`), or drop `;`-parameters from each segment (Servlet containers, so that `..;`
/// is `..`). As a reading passed to ``PathNormalizer/normalize(_:reading:)``, a set holds the
/// kinds read the second way.
public struct PathAmbiguity: OptionSet, Sendable, Hashable, CustomStringConvertible {
    /// One bit per kind.
    public let rawValue: UInt8
    /// A set from its bits; the static members name each kind's bit.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `%2F`: a segment separator, or data.
    public static let encodedSlash = PathAmbiguity(rawValue: 1 << 0)
    /// `\` or `%5C`: a segment separator, or data.
    public static let backslash = PathAmbiguity(rawValue: 1 << 1)
    /// A segment of one or two dots, some spelled `%2E`: a dot segment, or a name.
    public static let encodedDot = PathAmbiguity(rawValue: 1 << 2)
    /// A `..` with an empty segment anywhere before it (`/a//../b`): removes the empty segment
    /// (`/a/b`), or the one before it once `//` is merged (`/b`). Coarse on purpose: it also
    /// counts `//a/b/../c`, which reads the same either way, so that no case is missed.
    public static let dotDotAfterEmptySegment = PathAmbiguity(rawValue: 1 << 3)
    /// `;` in a segment: data, or the start of a parameter that is dropped (`/a;x/b` → `/a/b`).
    public static let segmentParameter = PathAmbiguity(rawValue: 1 << 4)

    /// Every kind: the reading with the most separators and dot segments, under which a path
    /// shows every kind it has under any reading.
    public static let all: PathAmbiguity = [.encodedSlash, .backslash, .encodedDot, .dotDotAfterEmptySegment, .segmentParameter]

    /// Each kind on its own, in a fixed order.
    public static let kinds: [PathAmbiguity] = [.encodedSlash, .backslash, .encodedDot, .dotDotAfterEmptySegment, .segmentParameter]

    /// The kinds, as a clause for an error message: `an encoded "/" (%2F) and a ";" parameter`.
    public var description: String {
        let names = Self.kinds.filter { contains($0) }.map { kind -> String in
            switch kind {
            case .encodedSlash: #"an encoded "/" (%2F)"#
            case .backslash: #"a "\" (raw or %5C)"#
            case .encodedDot: #"a dot segment spelled with %2E"#
            case .dotDotAfterEmptySegment: #"a ".." after an empty segment ("//")"#
            default: #"a ";" parameter in a segment"#
            }
        }
        switch names.count {
        case 0: return "nothing ambiguous"
        case 1: return names[0]
        default: return names.dropLast().joined(separator: ", ") + " and " + names.last!
        }
    }
}
