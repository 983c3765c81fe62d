extension RouteMatch {
    /// The keys `match` may have.
    public static let keys: Set<String> = ["host", "headers", "query", "cookies"]
    /// Most values one key's list may have: each request compares against all of them.
    public static let maxValues = 64
    /// Most keys one of `headers`, `query` or `cookies` may have.
    public static let maxKeys = 32

    /// Reads a route's `match` value at JSON path `path` (`routes[3].match`), with each problem
    /// at the path of the value it is about.
    /// - Returns: the predicates, or nil when there are problems.
    public static func parse(_ json: JSONValue, at path: String) -> (match: RouteMatch?, problems: [RouteTableError.Problem]) {
        var problems: [RouteTableError.Problem] = []
        guard case .object(let fields) = json else {
            return (
                nil, [.init(path: path, message: "must be an object with \"host\", \"headers\", \"query\" or \"cookies\"; found \(json.kindName)")]
            )
        }
        for key in fields.keys.sorted() where !keys.contains(key) {
            problems.append(
                .init(
                    path: RouteTableValidator.join(path, key),
                    message: "unknown key \(RouteTableValidator.shown(key)); allowed: cookies, headers, host, query"
                )
            )
        }
        var match = RouteMatch()
        switch fields["host"] {
        case nil: break
        case .string(let text)?:
            if let pattern = HostPattern(text) {
                match.host = pattern
            } else {
                problems.append(
                    .init(
                        path: "\(path).host",
                        message:
                            "\(RouteTableValidator.shown(text)) is not a host name or \"*.\" and a domain, as in \"shop.example.com\" or \"*.example.com\""
                    )
                )
            }
        case let other?:
            problems.append(.init(path: "\(path).host", message: "must be a string such as \"shop.example.com\"; found \(other.kindName)"))
        }
        match.headers = conditions(fields["headers"], at: "\(path).headers", kind: .header, problems: &problems)
        match.query = conditions(fields["query"], at: "\(path).query", kind: .query, problems: &problems)
        match.cookies = conditions(fields["cookies"], at: "\(path).cookies", kind: .cookie, problems: &problems)
        if problems.isEmpty, match.isEmpty {
            problems.append(.init(path: path, message: "is empty; leave \"match\" out for a route that takes every request on its path"))
        }
        guard problems.isEmpty else { return (nil, problems) }
        return (RouteMatch(host: match.host, headers: match.headers, query: match.query, cookies: match.cookies), [])
    }

    private enum Kind {
        case header, query, cookie
    }

    private static func conditions(_ json: JSONValue?, at path: String, kind: Kind, problems: inout [RouteTableError.Problem]) -> [Condition] {
        guard let json else { return [] }
        guard case .object(let entries) = json else {
            problems.append(
                .init(path: path, message: "must be an object of name → value, list of values, or {\"present\": true|false}; found \(json.kindName)")
            )
            return []
        }
        if entries.count > maxKeys { problems.append(.init(path: path, message: "has \(entries.count) names; at most \(maxKeys)")) }
        var result: [Condition] = []
        var seen: Set<String> = []
        for name in entries.keys.sorted() {
            let at = RouteTableValidator.join(path, name)
            switch kind {
            case .header:
                guard !name.isEmpty, name.utf8.count <= 256, name.unicodeScalars.allSatisfy(isTokenCharacter) else {
                    problems.append(.init(path: at, message: "is not a header name (letters, digits and !#$%&'*+-.^`|~)"))
                    continue
                }
                if name.contains("_") {
                    problems.append(
                        .init(
                            path: at,
                            message:
                                "has \"_\"; the proxy drops such headers (some servers read \"_\" as \"-\"), so the predicate could never hold; use \"-\""
                        )
                    )
                    continue
                }
                let lower = name.lowercased()
                if lower == "host" {
                    problems.append(.init(path: at, message: "use \"match.host\" for the host: it ignores the port, case and a trailing dot"))
                    continue
                }
                guard seen.insert(lower).inserted else {
                    problems.append(.init(path: at, message: "names a header already listed in another case; header names ignore case"))
                    continue
                }
            case .query, .cookie:
                guard !name.isEmpty, name.utf8.count <= 256, name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                    problems.append(.init(path: at, message: "must be a non-empty name of visible ASCII characters"))
                    continue
                }
            }
            if let value = valueCondition(entries[name]!, at: at, problems: &problems) {
                result.append(Condition(name: kind == .header ? name.lowercased() : name, value: value))
            }
        }
        return result
    }

    private static func valueCondition(_ json: JSONValue, at path: String, problems: inout [RouteTableError.Problem]) -> ValueCondition? {
        switch json {
        case .string(let value):
            guard value.utf8.count <= 4096 else {
                problems.append(.init(path: path, message: "is \(value.utf8.count) bytes long; at most 4096"))
                return nil
            }
            return .oneOf([value])
        case .array(let items):
            guard !items.isEmpty else {
                problems.append(
                    .init(path: path, message: "is an empty list, which no request matches; list the values, or use {\"present\": false}")
                )
                return nil
            }
            guard items.count <= maxValues else {
                problems.append(.init(path: path, message: "lists \(items.count) values; at most \(maxValues)"))
                return nil
            }
            var values: [String] = []
            for (index, item) in items.enumerated() {
                guard case .string(let value) = item else {
                    problems.append(.init(path: "\(path)[\(index)]", message: "must be a string; found \(item.kindName)"))
                    continue
                }
                guard value.utf8.count <= 4096 else {
                    problems.append(.init(path: "\(path)[\(index)]", message: "is \(value.utf8.count) bytes long; at most 4096"))
                    continue
                }
                if !values.contains(value) { values.append(value) }
            }
            return values.isEmpty ? nil : .oneOf(values)
        case .object(let fields):
            guard fields.count == 1, case .bool(let present)? = fields["present"] else {
                problems.append(.init(path: path, message: "as an object must be {\"present\": true} or {\"present\": false}"))
                return nil
            }
            return present ? .present : .absent
        default:
            problems.append(.init(path: path, message: "must be a value, a list of values, or {\"present\": true|false}; found \(json.kindName)"))
            return nil
        }
    }

    /// RFC 9110 `tchar`.
    private static func isTokenCharacter(_ scalar: Unicode.Scalar) -> Bool {
        CharacterSetASCII.isAlnum(scalar) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar)
    }
}
