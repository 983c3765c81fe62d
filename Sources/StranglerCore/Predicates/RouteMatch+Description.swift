/// How a route's predicates are shown: as JSON for the admin API, as one line for a terminal.
extension RouteMatch {
    /// The predicates as `routes.json` spells them, in canonical form: header names in lower
    /// case, a single value as a string and several as a list (in the order written), presence as
    /// `{"present": true}` or `{"present": false}`, and only the keys that have conditions.
    ///
    /// ```json
    /// { "host": "shop.example.com", "headers": { "x-channel": "web" },
    ///   "query": { "tenant": ["t-17", "t-42"] }, "cookies": { "beta": { "present": true } } }
    /// ```
    ///
    /// Reading it back with ``init(json:)`` gives equal predicates. Predicates that are empty
    /// give `{}`, which a route table refuses: leave `match` out for such a route.
    public var json: JSONValue {
        var fields: [String: JSONValue] = [:]
        if let host { fields["host"] = .string(host.description) }
        for (key, conditions) in [("headers", headers), ("query", query), ("cookies", cookies)] where !conditions.isEmpty {
            fields[key] = .object(Dictionary(conditions.map { ($0.name, $0.value.json) }, uniquingKeysWith: { first, _ in first }))
        }
        return .object(fields)
    }

    /// The predicates `json` spells (a route's `match` value), or nil when it is not valid
    /// there: for predicates that come back from ``json``, or from an admin API's route document.
    public init?(json: JSONValue) {
        guard let match = Self.parse(json, at: "match").match else { return nil }
        self = match
    }

    /// One line for a terminal or a table cell, the predicates in a fixed order (host, headers,
    /// query, cookies; names sorted), joined by ` · `:
    ///
    ///     host shop.example.com · header x-channel: web · query tenant: t-17|t-42 · cookie beta present
    ///
    /// A value is written bare when it is plain (ASCII letters, digits and `-._~:/@+=,;!$*%[]()`)
    /// and in double quotes otherwise, with `"` and `\` escaped, so that an empty value, a space, a
    /// `|` or a `·` inside one can't be mistaken for the separators; names likewise. `present` and
    /// `absent` stand for `{"present": true}` and `{"present": false}`. Empty predicates give an
    /// empty string.
    ///
    /// The text holds the values as they are: print it through ``TerminalText/escape(_:)``.
    public var summary: String {
        var parts: [String] = []
        if let host { parts.append("host \(host.description)") }
        for (kind, conditions) in [("header", headers), ("query", query), ("cookie", cookies)] {
            for condition in conditions {
                parts.append("\(kind) \(Self.quotedIfNeeded(condition.name))\(condition.value.summary)")
            }
        }
        return parts.joined(separator: " · ")
    }

    /// `text` bare when every character is plain (see ``summary``), otherwise in double quotes
    /// with `"` and `\` escaped.
    static func quotedIfNeeded(_ text: String) -> String {
        if !text.isEmpty, text.unicodeScalars.allSatisfy(isPlain) { return text }
        var quoted = "\""
        for scalar in text.unicodeScalars {
            if scalar == "\"" || scalar == "\\" { quoted.unicodeScalars.append("\\") }
            quoted.unicodeScalars.append(scalar)
        }
        return quoted + "\""
    }

    /// Characters that never need quotes: none of them is a space, `|`, `"`, `\` or the
    /// separator's `·`, and none is read as anything by a terminal.
    private static func isPlain(_ scalar: Unicode.Scalar) -> Bool {
        CharacterSetASCII.isAlnum(scalar) || "-._~:/@+=,;!$*%[]()".unicodeScalars.contains(scalar)
    }
}

extension ValueCondition {
    /// As `routes.json` spells it: one value as a string, several as a list in the order
    /// written, `{"present": true}` or `{"present": false}`.
    public var json: JSONValue {
        switch self {
        case .oneOf(let values) where values.count == 1: .string(values[0])
        case .oneOf(let values): .array(values.map(JSONValue.string))
        case .present: .object(["present": .bool(true)])
        case .absent: .object(["present": .bool(false)])
        }
    }

    /// What follows a name in ``RouteMatch/summary``: `: web`, `: t-17|t-42`, ` present` or
    /// ` absent`; values quoted as ``RouteMatch/summary`` says.
    public var summary: String {
        switch self {
        case .oneOf(let values): ": " + values.map(RouteMatch.quotedIfNeeded).joined(separator: "|")
        case .present: " present"
        case .absent: " absent"
        }
    }
}
