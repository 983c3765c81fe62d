/// Finds the route for a request with a segment trie, so matching cost grows with the path's
/// depth, not with the number of routes.
///
/// Specificity is decided segment by segment from the left: a literal segment beats `{param}`,
/// which beats a trailing `/**`. The search backtracks, so `/orders/export` prefers
/// `/orders/export` over `/orders/{id}`, and a request that only fits `/orders/**` still finds it.
/// A route that lists `GET` but not `HEAD` also takes `HEAD` requests.
public struct RouteMatcher: Sendable {
    private struct Entries: Sendable {
        var byMethod: [String: Int] = [:]
        var anyMethod: Int?

        func lookup(_ method: String) -> Int? {
            if let index = byMethod[method] { return index }
            if method == "HEAD", let index = byMethod["GET"] { return index }
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
    public init(routes: [Route]) throws {
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
                if let existing = entries.anyMethod {
                    throw RouteTableError(problems: [
                        .init(path: "routes", message: "routes \"\(routes[existing].id)\" and \"\(route.id)\" are ambiguous")
                    ])
                }
                entries.anyMethod = index
            } else {
                for method in route.methods {
                    if let existing = entries.byMethod[method] {
                        throw RouteTableError(problems: [
                            .init(path: "routes", message: "routes \"\(routes[existing].id)\" and \"\(route.id)\" are ambiguous for \(method)")
                        ])
                    }
                    entries.byMethod[method] = index
                }
            }
            if route.path.catchAll { nodes[node].rest = entries } else { nodes[node].exact = entries }
        }
    }

    /// The most specific route for `method` and the request target `uri` (path and query).
    public func match(method: String, uri: String) -> Route? {
        matchIndex(method: method, uri: uri).map { routes[$0] }
    }

    /// Like ``match(method:uri:)`` but returns the route's index in the table.
    public func matchIndex(method: String, uri: String) -> Int? {
        var path = Substring(uri)
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            path = path[..<query]
        }
        guard path.first == "/" else { return nil }
        return search(node: 0, remaining: path.dropFirst(), method: method)
    }

    /// The values of the route's `{param}` segments in `uri`, by name.
    public static func parameters(of route: Route, uri: String) -> [String: Substring] {
        var path = Substring(uri)
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<query] }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        var result: [String: Substring] = [:]
        for (segment, part) in zip(route.path.segments, parts) {
            if case .param(let name) = segment { result[name] = part }
        }
        return result
    }

    /// `remaining` is the path after a "/" separator: "" for a trailing slash or the root.
    private func search(node index: Int, remaining: Substring?, method: String) -> Int? {
        let node = nodes[index]
        guard let remaining else {
            if let found = node.exact?.lookup(method) { return found }
            return node.rest?.lookup(method)
        }
        // The root path "/" has no segments: it is the end of the path, not an empty segment.
        if index == 0, remaining.isEmpty {
            return search(node: 0, remaining: nil, method: method)
        }
        let segment: Substring
        let next: Substring?
        if let slash = remaining.firstIndex(of: "/") {
            segment = remaining[..<slash]
            next = remaining[remaining.index(after: slash)...]
        } else {
            segment = remaining
            next = nil
        }
        if let child = node.literals[segment], let found = search(node: child, remaining: next, method: method) {
            return found
        }
        if !segment.isEmpty, let child = node.param, let found = search(node: child, remaining: next, method: method) {
            return found
        }
        return node.rest?.lookup(method)
    }
}
