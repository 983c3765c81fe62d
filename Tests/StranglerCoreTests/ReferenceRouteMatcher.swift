import StranglerCore

// The route matcher as it was before it was flattened into byte arrays (a trie of
// `[Substring: Int]` dictionaries, walked over Substrings): the oracle the randomized test holds
// the current matcher to. Tables come validated by RouteTable.parse, so it checks no ambiguity.

/// The earlier matcher, kept as a reference.
///
/// Specificity is decided segment by segment from the left: a literal segment beats `{param}`,
/// which beats a trailing `/**`. The search backtracks, so `/orders/export` prefers
/// `/orders/export` over `/orders/{id}`, and a request that only fits `/orders/**` still finds it.
/// A route that lists `GET` but not `HEAD` also takes `HEAD` requests.
struct ReferenceRouteMatcher {
    private struct Entries: Sendable {
        /// A route lists a handful of methods: a scan of small strings beats hashing.
        var byMethod: [(method: String, index: Int)] = []
        var anyMethod: Int?

        subscript(method: String) -> Int? {
            for entry in byMethod where entry.method == method { return entry.index }
            return nil
        }

        func lookup(_ method: String) -> Int? {
            if let index = self[method] { return index }
            if method == "HEAD", let index = self["GET"] { return index }
            return anyMethod
        }
    }

    private struct Node: Sendable {
        var literals: [Substring: Int] = [:]
        var param: Int?
        var exact: Entries?
        var rest: Entries?
    }

    private var nodes: [Node] = [Node()]
    private let routes: [Route]

    /// Builds the trie. Routes must already be free of ambiguity (``RouteTable/parse(_:)`` checks).
    init(routes: [Route]) {
        self.routes = routes
        for (index, route) in routes.enumerated() {
            var node = 0
            for segment in route.path.segments {
                switch segment {
                case .literal(let text):
                    if let next = nodes[node].literals[Substring(text)] {
                        node = next
                    } else {
                        nodes.append(Node())
                        nodes[node].literals[Substring(text)] = nodes.count - 1
                        node = nodes.count - 1
                    }
                case .param:
                    if let next = nodes[node].param {
                        node = next
                    } else {
                        nodes.append(Node())
                        nodes[node].param = nodes.count - 1
                        node = nodes.count - 1
                    }
                }
            }
            var entries = (route.path.catchAll ? nodes[node].rest : nodes[node].exact) ?? Entries()
            if route.methods.isEmpty {
                entries.anyMethod = index
            } else {
                for method in route.methods {
                    entries.byMethod.append((method, index))
                }
            }
            if route.path.catchAll { nodes[node].rest = entries } else { nodes[node].exact = entries }
        }
    }

    /// The most specific route for `method` and the request target `uri` (path and query).
    func match(method: String, uri: String) -> Route? {
        matchIndex(method: method, uri: uri).map { routes[$0] }
    }

    /// Like ``match(method:uri:)`` but returns the route's index in the table.
    func matchIndex(method: String, uri: String) -> Int? {
        // Bytes, not Characters: a request target is ASCII, and grapheme breaking is the
        // expensive part of scanning a String.
        var path = Substring(uri)
        if let query = path.utf8.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            path = path[..<query]
        }
        guard path.utf8.first == UInt8(ascii: "/") else { return nil }
        return search(node: 0, remaining: path[path.utf8.index(after: path.startIndex)...], method: method)
    }

    /// `remaining` is the path after a "/" separator: "" for a trailing slash or the root.
    private func search(node index: Int, remaining: Substring?, method: String) -> Int? {
        guard let remaining else {
            if let found = nodes[index].exact?.lookup(method) { return found }
            return nodes[index].rest?.lookup(method)
        }
        // The root path "/" has no segments: it is the end of the path, not an empty segment.
        if index == 0, remaining.isEmpty {
            return search(node: 0, remaining: nil, method: method)
        }
        let segment: Substring
        let next: Substring?
        if let slash = remaining.utf8.firstIndex(of: UInt8(ascii: "/")) {
            segment = remaining[..<slash]
            next = remaining[remaining.utf8.index(after: slash)...]
        } else {
            segment = remaining
            next = nil
        }
        // Subscripting `nodes` each time rather than copying the node out: a copy retains its
        // dictionary and entries.
        if let child = nodes[index].literals[segment], let found = search(node: child, remaining: next, method: method) {
            return found
        }
        if !segment.isEmpty, let child = nodes[index].param, let found = search(node: child, remaining: next, method: method) {
            return found
        }
        return nodes[index].rest?.lookup(method)
    }
}
