/// Finds the route for a request with a segment trie, so matching cost grows with the path's
/// depth, not with the number of routes.
///
/// Specificity is decided segment by segment from the left: a literal segment beats `{param}`,
/// which beats a trailing `/**`. The search backtracks, so `/orders/export` prefers
/// `/orders/export` over `/orders/{id}`, and a request that only fits `/orders/**` still finds it.
/// A route that lists `GET` but not `HEAD` also takes `HEAD` requests.
///
/// Routes with predicates (`match`) sit beside the plain routes of their path, in a list per
/// method ordered by ``RouteMatch/precedence``: the first whose predicates hold takes the
/// request, and when none does, the search goes on as if the path had not matched there (the
/// next most specific route, then none). A node without predicated routes holds a route index
/// and never looks at the request.
public struct RouteMatcher: Sendable {
    /// The routes one node takes for a path, by method. A slot is a route index (a route
    /// without predicates, taken as soon as its method matches), or the bitwise complement of
    /// an index into ``RouteMatcher/lists`` (candidates in precedence order).
    fileprivate struct Entries: Sendable {
        /// A route lists a handful of methods: a scan of small strings beats hashing.
        var byMethod: [(method: String, slot: Int)] = []
        var anyMethod: Int?

        subscript(method: String) -> Int? {
            for entry in byMethod where entry.method == method { return entry.slot }
            return nil
        }

        /// The route for `method`: its slot, then for `HEAD` the `GET` slot, then the slot for
        /// every method; `picker` picks from a candidate list. A method of the entries, called
        /// on them where they are: a copy would retain `byMethod`.
        func lookup<Picker: CandidatePicker>(_ method: String, _ picker: Picker) -> Int? {
            if let slot = self[method], let found = Self.take(slot, picker) { return found }
            if method == "HEAD", let slot = self["GET"], let found = Self.take(slot, picker) { return found }
            guard let slot = anyMethod else { return nil }
            return Self.take(slot, picker)
        }

        /// A slot's route, or the first candidate of its list whose predicates hold (the last
        /// one of a list may have none).
        private static func take<Picker: CandidatePicker>(_ slot: Int, _ picker: Picker) -> Int? {
            slot >= 0 ? slot : picker.first(~slot)
        }
    }

    private struct Node: Sendable {
        /// This node's literal children: `edges[edgeStart..<edgeStart + edgeCount]`, sorted by
        /// hash when there are more than ``RouteMatcher/linearLimit``.
        var edgeStart = 0
        var edgeCount = 0
        var param: Int?
        var exact: Entries?
        var rest: Entries?
    }

    /// A literal segment leading to a child node; its text is `names[offset..<offset + length]`.
    private struct Edge: Sendable {
        var hash: UInt64
        var offset: Int
        var length: Int
        var child: Int
    }

    /// Up to this many literal children are scanned; more are binary-searched by hash (the
    /// first segment of a table with thousands of services).
    private static let linearLimit = 8

    private var nodes: [Node] = [Node()]
    private var edges: [Edge] = []
    /// The bytes of every literal segment, end to end.
    private var names: [UInt8] = []
    /// The candidate lists, nil when no route has predicates: one reference, so that a copy of
    /// the matcher retains one more object than before predicates, and a plain table none.
    private let candidateLists: CandidateLists?
    private let routes: [Route]

    /// Candidate lists (`routes[ranges[n]]` are route indices in precedence order) and the
    /// predicates they are checked with.
    private final class CandidateLists: Sendable {
        let ranges: [Range<Int>]
        let routes: [Int]
        let predicates: CompiledPredicates

        init(ranges: [Range<Int>], routes: [Int], predicates: CompiledPredicates) {
            self.ranges = ranges
            self.routes = routes
            self.predicates = predicates
        }

        /// The first route of list `list` whose predicates `request` satisfies.
        func first(_ list: Int, _ request: some RouteMatchRequest) -> Int? {
            for candidate in routes[ranges[list]] where predicates.accepts(route: candidate, request) { return candidate }
            return nil
        }
    }

    /// Candidate lists while the trie is built.
    fileprivate struct ListBuilder {
        let routes: [Route]
        var ranges: [Range<Int>] = []
        var candidates: [Int] = []
    }

    /// Builds the trie. Routes must already be free of ambiguity (``RouteTable/parse(_:)`` checks);
    /// two routes without predicates that take one method on one path throw.
    public init(routes: [Route]) throws {
        self.routes = routes
        var builder = ListBuilder(routes: routes)
        // Built with a dictionary per node, then flattened into `edges` and `names`, so a
        // lookup compares bytes in two flat arrays and retains nothing.
        var literals: [[String: Int]] = [[:]]
        var exactRoutes: [[Int]] = [[]]
        var restRoutes: [[Int]] = [[]]
        for (index, route) in routes.enumerated() {
            var node = 0
            for segment in route.path.segments {
                switch segment {
                case .literal(let text):
                    if let next = literals[node][text] {
                        node = next
                    } else {
                        nodes.append(Node())
                        literals.append([:])
                        exactRoutes.append([])
                        restRoutes.append([])
                        literals[node][text] = nodes.count - 1
                        node = nodes.count - 1
                    }
                case .param:
                    if let next = nodes[node].param {
                        node = next
                    } else {
                        nodes.append(Node())
                        literals.append([:])
                        exactRoutes.append([])
                        restRoutes.append([])
                        nodes[node].param = nodes.count - 1
                        node = nodes.count - 1
                    }
                }
            }
            if route.path.catchAll { restRoutes[node].append(index) } else { exactRoutes[node].append(index) }
        }
        for node in nodes.indices {
            nodes[node].exact = try builder.entries(exactRoutes[node])
            nodes[node].rest = try builder.entries(restRoutes[node])
            var nodeEdges: [Edge] = []
            for (text, child) in literals[node] {
                let bytes = Array(text.utf8)
                nodeEdges.append(Edge(hash: Self.hash(bytes), offset: names.count, length: bytes.count, child: child))
                names.append(contentsOf: bytes)
            }
            nodeEdges.sort { ($0.hash, $0.offset) < ($1.hash, $1.offset) }
            nodes[node].edgeStart = edges.count
            nodes[node].edgeCount = nodeEdges.count
            edges.append(contentsOf: nodeEdges)
        }
        candidateLists =
            builder.ranges.isEmpty
            ? nil
            : CandidateLists(ranges: builder.ranges, routes: builder.candidates, predicates: CompiledPredicates(routes.map(\.match)))
    }
}

extension RouteMatcher.ListBuilder {
    /// The entries of the routes (indices in table order) that end at one node the same way.
    fileprivate mutating func entries(_ indices: [Int]) throws -> RouteMatcher.Entries? {
        guard !indices.isEmpty else { return nil }
        var methods: [String] = []
        for index in indices {
            for method in routes[index].methods where !methods.contains(method) { methods.append(method) }
        }
        var entries = RouteMatcher.Entries()
        for method in methods {
            let takers = indices.filter { routes[$0].methods.isEmpty || routes[$0].methods.contains(method) }
            // A route that lists GET takes HEAD too, after the routes that name HEAD: its
            // predicates must still rank against theirs, or a plain route would shadow them.
            let getters = method == "HEAD" ? indices.filter { routes[$0].methods.contains("GET") && !takers.contains($0) } : []
            entries.byMethod.append((method, try slot(takers, implied: getters, method: method)))
        }
        let anyMethod = indices.filter { routes[$0].methods.isEmpty }
        if !anyMethod.isEmpty { entries.anyMethod = try slot(anyMethod, implied: [], method: nil) }
        return entries
    }

    /// One route without predicates as itself; otherwise a candidate list in precedence order.
    /// `implied` are routes that take the method only through another (GET routes for HEAD):
    /// they rank after the others at equal precedence.
    private mutating func slot(_ takers: [Int], implied: [Int], method: String?) throws -> Int {
        let plain = takers.filter { routes[$0].match.isEmpty }
        if plain.count > 1 {
            let names = "routes \"\(routes[plain[0]].id)\" and \"\(routes[plain[1]].id)\" are ambiguous"
            throw RouteTableError(problems: [.init(path: "routes", message: method.map { "\(names) for \($0)" } ?? names)])
        }
        // Without predicates the route that names the method takes every request (a GET route
        // never gets HEAD beside a HEAD route), and the node costs what it did before predicates.
        if plain.count == 1, (takers + implied).allSatisfy({ routes[$0].match.isEmpty }) { return plain[0] }
        // Highest precedence first; then the routes that name the method; equal ones (which
        // cannot both hold) in table order.
        let ranked =
            takers.map { (index: $0, precedence: routes[$0].match.precedence, implied: 0) }
            + implied.map { (index: $0, precedence: routes[$0].match.precedence, implied: 1) }
        let ordered = ranked.sorted { left, right in
            (-left.precedence, left.implied, left.index) < (-right.precedence, right.implied, right.index)
        }
        ranges.append(candidates.count..<(candidates.count + ordered.count))
        candidates.append(contentsOf: ordered.map(\.index))
        return ~(ranges.count - 1)
    }
}

extension RouteMatcher {
    /// The route at `index` in the table the matcher was built from.
    func route(at index: Int) -> Route { routes[index] }

    /// The most specific route for `method` and the request target `uri` (path and query),
    /// for a request with no host and no headers: a route whose predicates need one is passed
    /// over.
    public func match(method: String, uri: String) -> Route? {
        matchIndex(method: method, uri: uri).map { routes[$0] }
    }

    /// Like ``match(method:uri:)`` but returns the route's index in the table.
    public func matchIndex(method: String, uri: String) -> Int? {
        matchIndex(method: method, uri: uri, request: RequestDetails(target: uri))
    }

    /// The most specific route for `method` and the request target `uri` whose predicates
    /// `request` satisfies, by index in the table.
    public func matchIndex(method: String, uri: String, request: some RouteMatchRequest) -> Int? {
        var uri = uri
        return uri.withUTF8 { matchIndex(method: method, target: UnsafeRawBufferPointer($0), request: request) }
    }

    /// Like ``matchIndex(method:uri:request:)``, for a request target as the client sent its
    /// bytes. Segments compare byte for byte: a request target is ASCII, percent-encoded.
    public func matchIndex(method: String, target: UnsafeRawBufferPointer, request: some RouteMatchRequest) -> Int? {
        // The walk is specialised for each picker here, in this module: a table without
        // predicates walks exactly as before them, and the request (whose type this module
        // does not know) is only seen through the closure a candidate list calls.
        guard let candidateLists else { return walk(target, method: method, picker: NoCandidates()) }
        return withoutActuallyEscaping(
            { (list: Int) in candidateLists.first(list, request) },
            do: { first in walk(target, method: method, picker: ClosurePicker(first: first)) }
        )
    }

    private func walk<Picker: CandidatePicker>(_ target: UnsafeRawBufferPointer, method: String, picker: Picker) -> Int? {
        var end = 0
        while end < target.count, target[end] != UInt8(ascii: "?"), target[end] != UInt8(ascii: "#") { end += 1 }
        guard end > 0, target[0] == UInt8(ascii: "/") else { return nil }
        // Buffers, not the arrays: a copy of the matcher in the walk would retain each array.
        return nodes.withUnsafeBufferPointer { nodes in
            edges.withUnsafeBufferPointer { edges in
                names.withUnsafeBufferPointer { names in
                    Walk(nodes: nodes, edges: edges, names: names, path: target, end: end, method: method, picker: picker)
                        .search(node: 0, from: 1)
                }
            }
        }
    }

    /// Picks from a candidate list: the first route whose predicates the request satisfies.
    fileprivate protocol CandidatePicker {
        func first(_ list: Int) -> Int?
    }

    /// A table without candidate lists.
    private struct NoCandidates: CandidatePicker {
        func first(_ list: Int) -> Int? { nil }
    }

    private struct ClosurePicker: CandidatePicker {
        let first: (Int) -> Int?

        func first(_ list: Int) -> Int? { first(list) }
    }

    /// FNV-1a over a segment's bytes: cheap for the short segments of a path.
    private static func hash<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash
    }

    /// One lookup's walk down the trie, over the flattened arrays.
    private struct Walk<Picker: CandidatePicker> {
        let nodes: UnsafeBufferPointer<Node>
        let edges: UnsafeBufferPointer<Edge>
        let names: UnsafeBufferPointer<UInt8>
        let path: UnsafeRawBufferPointer
        /// Where the path ends (before any query).
        let end: Int
        let method: String
        let picker: Picker

        /// `start` is where the path continues after a "/" separator (`end` for a trailing
        /// slash or the root); nil once the path is used up.
        func search(node index: Int, from start: Int?) -> Int? {
            guard let start else {
                if let found = nodes[index].exact?.lookup(method, picker) { return found }
                return nodes[index].rest?.lookup(method, picker)
            }
            // The root path "/" has no segments: it is the end of the path, not an empty segment.
            if index == 0, start == end {
                return search(node: 0, from: nil)
            }
            var slash = start
            while slash < end, path[slash] != UInt8(ascii: "/") { slash += 1 }
            let next: Int? = slash < end ? slash + 1 : nil
            if let child = literal(node: index, start..<slash), let found = search(node: child, from: next) {
                return found
            }
            if slash > start, let child = nodes[index].param, let found = search(node: child, from: next) {
                return found
            }
            return nodes[index].rest?.lookup(method, picker)
        }

        /// The child of `node` whose literal is the path's bytes in `segment`.
        private func literal(node: Int, _ segment: Range<Int>) -> Int? {
            let first = nodes[node].edgeStart
            let count = nodes[node].edgeCount
            guard count > 0 else { return nil }
            if count <= RouteMatcher.linearLimit {
                for edge in first..<(first + count) where equals(edges[edge], segment) {
                    return edges[edge].child
                }
                return nil
            }
            let hash = RouteMatcher.hash(UnsafeRawBufferPointer(rebasing: path[segment]))
            var low = first
            var high = first + count
            while low < high {
                let middle = (low + high) / 2
                if edges[middle].hash < hash { low = middle + 1 } else { high = middle }
            }
            while low < first + count, edges[low].hash == hash {
                if equals(edges[low], segment) { return edges[low].child }
                low += 1
            }
            return nil
        }

        private func equals(_ edge: Edge, _ segment: Range<Int>) -> Bool {
            guard edge.length == segment.count else { return false }
            for offset in 0..<edge.length where names[edge.offset + offset] != path[segment.lowerBound + offset] {
                return false
            }
            return true
        }
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
}
