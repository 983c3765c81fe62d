/// A parsed route path template: `/orders/{id}/items/**`.
///
/// Matching works on path segments in normal form (``PathNormalizer``): literal segments are
/// kept in that form, and a request's path is normalised before it is matched, unless it
/// already is. The client's target is forwarded as it was sent.
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    /// One segment of a template.
    public enum Segment: Sendable, Hashable {
        /// A segment that must equal this text exactly.
        case literal(String)
        /// `{name}`: any one non-empty segment.
        case param(String)
    }

    /// The segments before any trailing `/**`.
    public var segments: [Segment]
    /// True when the template ends in `/**` (any rest, including nothing).
    public var catchAll: Bool
    /// The template as written.
    public var description: String

    /// Names of the `{param}` segments, in order.
    public var parameterNames: [String] {
        segments.compactMap { if case .param(let name) = $0 { name } else { nil } }
    }

    /// Parses a template, or says what is wrong with it.
    public static func parse(_ text: String) -> Result<PathTemplate, TemplateError> {
        guard text.hasPrefix("/") else { return .failure(.init("must start with \"/\"")) }
        // Byte scans: `String.contains(String)` goes through Foundation's locale-aware search,
        // which was a tenth of validating a 90,000-route table.
        if text.utf8.contains(UInt8(ascii: "?")) || text.utf8.contains(UInt8(ascii: "#")) {
            return .failure(.init("must not contain a query or fragment (\"?\" or \"#\")"))
        }
        var parts = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts == [""] { parts = [] }  // "/" is the root
        var catchAll = false
        if parts.last == "**" {
            catchAll = true
            parts.removeLast()
        }
        var segments: [Segment] = []
        var seenNames = Set<String>()
        for part in parts {
            if part.isEmpty { return .failure(.init("has an empty segment (\"//\" or a trailing \"/\")")) }
            if part == "**" { return .failure(.init("\"**\" is only allowed as the last segment")) }
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count >= 2 {
                let name = String(part.dropFirst().dropLast())
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    return .failure(.init("parameter \"\(part)\" needs a name of letters, digits or \"_\""))
                }
                guard seenNames.insert(name).inserted else {
                    return .failure(.init("parameter \"{\(name)}\" appears twice"))
                }
                segments.append(.param(name))
            } else if part.utf8.contains(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "}") || $0 == UInt8(ascii: "*") }) {
                return .failure(.init("segment \"\(part)\" mixes text with \"{\", \"}\" or \"*\"; a parameter is a whole segment"))
            } else {
                switch normalLiteral(part) {
                case .success(let literal): segments.append(.literal(literal))
                case .failure(let error): return .failure(error)
                }
            }
        }
        return .success(PathTemplate(segments: segments, catchAll: catchAll, description: text))
    }

    /// A literal segment in the normal form request paths are matched in (``PathNormalizer``),
    /// so that `/%7Euser` in a template matches `/~user` and `/%7euser` in a request. A dot
    /// segment, which no normal path has, or an invalid escape is an error.
    private static func normalLiteral(_ part: String) -> Result<String, TemplateError> {
        var normalizer = PathNormalizer()
        let bytes = Array(("/" + part).utf8)
        do {
            _ = try bytes.withUnsafeBytes { try normalizer.normalize($0, reading: []) }
        } catch {
            return .failure(.init("segment \"\(part)\" can never match: \(error)"))
        }
        let normal = normalizer.path.dropFirst()
        guard !normal.isEmpty, !normal.contains(UInt8(ascii: "/")) else {
            return .failure(.init("segment \"\(part)\" is a dot segment; requests are routed with dot segments resolved"))
        }
        return .success(String(decoding: normal, as: UTF8.self))
    }

    /// The template with parameter names erased: two templates with the same shape match exactly
    /// the same paths with the same specificity.
    public var shape: String {
        // Appended into one string: the validator takes the shape of every route on every reload.
        var shape = ""
        for (position, segment) in segments.enumerated() {
            if position > 0 { shape += "/" }
            switch segment {
            case .literal(let text):
                shape += "L:"
                shape += text
            case .param: shape += "P"
            }
        }
        if catchAll { shape += "/**" }
        return shape
    }

    /// Why a template was rejected.
    public struct TemplateError: Error, Sendable, CustomStringConvertible {
        /// What is wrong with the template, for the validator's problem message.
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
