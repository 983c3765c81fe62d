/// A route's `match`: predicates on the request beyond its method and path, so that one
/// function can move one channel, tenant or host at a time.
///
/// ```json
/// "match": {
///   "host": "shop.example.com",
///   "headers": { "X-Channel": "web" },
///   "query": { "tenant": ["t-17", "t-42"] },
///   "cookies": { "beta": "1" }
/// }
/// ```
///
/// Every predicate must hold. Header names compare without case; query parameter and cookie
/// names exactly. The relations ``implies(_:)`` and ``overlaps(_:)`` give the precedence and
/// ambiguity rules among routes of equal path specificity.
public struct RouteMatch: Sendable, Hashable {
    /// One key's condition.
    public struct Condition: Sendable, Hashable {
        /// The header (lower case), query parameter or cookie name.
        public var name: String
        /// What its values must be.
        public var value: ValueCondition

        /// A condition on `name`.
        public init(name: String, value: ValueCondition) {
            self.name = name
            self.value = value
        }
    }

    /// The `Host` the request must name, if any.
    public var host: HostPattern?
    /// Conditions on headers, names in lower case, sorted by name.
    public var headers: [Condition]
    /// Conditions on query parameters, sorted by name.
    public var query: [Condition]
    /// Conditions on cookies, sorted by name.
    public var cookies: [Condition]

    /// Predicates; header names are folded to lower case, and each list is kept sorted by name.
    public init(host: HostPattern? = nil, headers: [Condition] = [], query: [Condition] = [], cookies: [Condition] = []) {
        self.host = host
        self.headers = headers.map { Condition(name: $0.name.lowercased(), value: $0.value) }.sorted { $0.name < $1.name }
        self.query = query.sorted { $0.name < $1.name }
        self.cookies = cookies.sorted { $0.name < $1.name }
    }

    /// No predicate at all: what a route without `match` has.
    public var isEmpty: Bool { host == nil && headers.isEmpty && query.isEmpty && cookies.isEmpty }

    /// Orders the routes of one path and method: greater goes first. Predicates strictly more
    /// specific than another's (``isStrictlyMoreSpecific(than:)``) always rank higher, so the
    /// first route whose predicates hold is the most specific one that does.
    ///
    /// Keys come first: a route that implies another has a condition on every key the other
    /// has. Among routes with as many keys, narrower conditions weigh more: a list of fewer
    /// values beats a longer one and any list beats `present`, and an exact host beats a
    /// wildcard. Routes that neither imply each other either cannot both hold (validation
    /// refuses the ones that can), so their order is moot.
    public var precedence: Int {
        var keys = headers.count + query.count + cookies.count
        var narrowness = 0
        if let host {
            keys += 1
            narrowness += host.isWildcard ? 1 : 2
        }
        for conditions in [headers, query, cookies] {
            for condition in conditions {
                if case .oneOf(let values) = condition.value { narrowness += 1_000 - values.count }
            }
        }
        return (keys << 32) + narrowness
    }

    /// Whether every request these predicates accept, `other`'s accept too: `other` asks for a
    /// subset of what this asks (or the same).
    public func implies(_ other: RouteMatch) -> Bool {
        if let theirs = other.host {
            guard let mine = host, mine.implies(theirs) else { return false }
        }
        return Self.implies(headers, other.headers) && Self.implies(query, other.query) && Self.implies(cookies, other.cookies)
    }

    /// Whether these predicates ask strictly more than `other`'s: they win over `other` among
    /// routes of equal path specificity.
    public func isStrictlyMoreSpecific(than other: RouteMatch) -> Bool {
        implies(other) && !other.implies(self)
    }

    /// Whether one request can satisfy both: no key is asked for in two ways that exclude each
    /// other.
    public func overlaps(_ other: RouteMatch) -> Bool {
        if let mine = host, let theirs = other.host, !mine.overlaps(theirs) { return false }
        return Self.overlap(headers, other.headers) && Self.overlap(query, other.query) && Self.overlap(cookies, other.cookies)
    }

    /// Whether two routes with equal path specificity, methods in common and these predicates
    /// are ambiguous: a request could match both, and neither's predicates contain the other's.
    public func isAmbiguous(with other: RouteMatch) -> Bool {
        overlaps(other) && !implies(other) && !other.implies(self)
    }

    /// Every condition of `theirs` is implied by a condition on the same name in `mine`.
    private static func implies(_ mine: [Condition], _ theirs: [Condition]) -> Bool {
        theirs.allSatisfy { required in
            mine.contains { $0.name == required.name && $0.value.implies(required.value) }
        }
    }

    /// No name has conditions in both lists that exclude each other.
    private static func overlap(_ mine: [Condition], _ theirs: [Condition]) -> Bool {
        mine.allSatisfy { condition in
            theirs.allSatisfy { $0.name != condition.name || $0.value.overlaps(condition.value) }
        }
    }
}
