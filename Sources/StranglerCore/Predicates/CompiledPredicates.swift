/// Every route's predicates laid out in flat arrays, for the matcher's hot path.
///
/// A ``RouteMatch`` holds strings in arrays of structs: reading one retains each of them, and a
/// candidate check would cost a handful of reference-count operations before it compares a byte.
/// Here names and values are ranges of one byte array, so a check reads buffers and retains
/// nothing, like the trie's own edges. ``RouteMatch/matches(_:)`` evaluates through this type
/// too, so there is one evaluation.
struct CompiledPredicates: Sendable {
    enum Key: UInt8, Sendable {
        case host, header, query, cookie
    }

    enum Test: UInt8, Sendable {
        case oneOf, present, absent
    }

    struct Condition: Sendable {
        var key: Key
        var test: Test
        /// For `host`: a `*.` pattern.
        var wildcard: Bool
        /// The name (a header's in lower case; the host pattern's domain) in ``bytes``.
        var name: Range<Int>
        /// The accepted values' ranges, in ``values``.
        var accepted: Range<Int>
    }

    private var bytes: [UInt8] = []
    private var values: [Range<Int>] = []
    private var conditions: [Condition] = []
    /// Each route's conditions in ``conditions``, by route index.
    private var routes: [Range<Int>] = []

    /// The predicates of each route, by route index.
    init(_ matches: [RouteMatch]) {
        routes.reserveCapacity(matches.count)
        for match in matches {
            let first = conditions.count
            if let host = match.host {
                add(.host, .oneOf, wildcard: host.isWildcard, name: host.name, values: [])
            }
            for (key, list) in [(Key.header, match.headers), (.query, match.query), (.cookie, match.cookies)] {
                for condition in list {
                    switch condition.value {
                    case .oneOf(let accepted): add(key, .oneOf, wildcard: false, name: condition.name, values: accepted)
                    case .present: add(key, .present, wildcard: false, name: condition.name, values: [])
                    case .absent: add(key, .absent, wildcard: false, name: condition.name, values: [])
                    }
                }
            }
            routes.append(first..<conditions.count)
        }
    }

    private mutating func add(_ key: Key, _ test: Test, wildcard: Bool, name: String, values accepted: [String]) {
        let name = append(name)
        let start = values.count
        for value in accepted { values.append(append(value)) }
        conditions.append(Condition(key: key, test: test, wildcard: wildcard, name: name, accepted: start..<values.count))
    }

    private mutating func append(_ text: String) -> Range<Int> {
        let start = bytes.count
        bytes.append(contentsOf: text.utf8)
        return start..<bytes.count
    }

    /// Whether `request` satisfies every predicate of route `route`.
    func accepts(route: Int, _ request: some RouteMatchRequest) -> Bool {
        let range = routes[route]
        if range.isEmpty { return true }
        return bytes.withUnsafeBytes { bytes in
            values.withUnsafeBufferPointer { values in
                conditions.withUnsafeBufferPointer { conditions in
                    for index in range where !Self.holds(conditions[index], request, bytes: bytes, values: values) {
                        return false
                    }
                    return true
                }
            }
        }
    }

    private static let cookie: StaticString = "cookie"

    private static func holds(
        _ condition: Condition,
        _ request: some RouteMatchRequest,
        bytes: UnsafeRawBufferPointer,
        values: UnsafeBufferPointer<Range<Int>>
    ) -> Bool {
        let name = UnsafeRawBufferPointer(rebasing: bytes[condition.name])
        if condition.key == .host {
            return request.withHost { host in
                host.map { HostPattern.matches(host: $0, name: name, wildcard: condition.wildcard) } ?? false
            }
        }
        // Whether some value of the key passes `body`, for the key's kind.
        func some(_ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
            switch condition.key {
            case .host:
                return false
            case .header:
                return request.firstHeaderValue(named: name, where: body)
            case .query:
                return request.withQuery { query in
                    query.map { RequestKeyValues.firstQueryValue(in: $0, named: name, where: body) } ?? false
                }
            case .cookie:
                let header = UnsafeRawBufferPointer(start: cookie.utf8Start, count: cookie.utf8CodeUnitCount)
                return request.firstHeaderValue(named: header) { line in
                    RequestKeyValues.firstCookieValue(in: line, named: name, where: body)
                }
            }
        }
        switch condition.test {
        case .present:
            return some { _ in true }
        case .absent:
            return !some { _ in true }
        case .oneOf:
            return some { value in
                values[condition.accepted].contains { value.elementsEqual(bytes[$0]) }
            }
        }
    }
}
