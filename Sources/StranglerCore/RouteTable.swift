import Foundation

/// A validated route table: the upstreams, the default upstream and the routes, with a matcher.
///
/// Instances are immutable; a reload builds a new one and swaps it in whole, so a request keeps
/// the table it started with.
public struct RouteTable: Sendable {
    /// Upstreams by name.
    public let upstreams: [String: Upstream]
    /// Name of the upstream unmatched requests go to.
    public let defaultUpstream: String
    /// Routes in file order.
    public let routes: [Route]
    /// Content hash of the file this table came from: its version.
    public let version: String
    /// The matcher built from `routes`.
    public let matcher: RouteMatcher

    /// Builds a table from already-validated parts. Prefer ``parse(_:)``.
    public init(upstreams: [String: Upstream], defaultUpstream: String, routes: [Route], version: String) throws {
        self.upstreams = upstreams
        self.defaultUpstream = defaultUpstream
        self.routes = routes
        self.version = version
        self.matcher = try RouteMatcher(routes: routes)
    }

    /// Parses and validates `routes.json` content. Throws ``RouteTableError`` listing the problems
    /// (the first 100 of them, and how many more there are).
    public static func parse(_ data: Data) throws(RouteTableError) -> RouteTable {
        try validate(data, reusing: nil, keepingBasis: false).table
    }

    /// A table validated for a reload, with what the next reload may reuse.
    public struct Validation: Sendable {
        /// The validated table.
        public let table: RouteTable
        /// What the next validation may reuse; nil when the file's routes could not be located.
        public let basis: RouteTableBasis?
        /// How many routes were validated; the others were taken unchanged from the basis.
        public let validatedRoutes: Int
    }

    /// Parses and validates `routes.json` content as ``parse(_:)`` does, taking each route whose
    /// bytes and upstreams are unchanged since `basis` from it instead of validating it again.
    /// The result is the same table either way; only the work differs.
    /// - Parameter version: the content hash of `data` when the caller has it already (a reload
    ///   hashes the file to see whether it changed); computed otherwise.
    public static func parse(_ data: Data, reusing basis: RouteTableBasis?, version: String? = nil) throws(RouteTableError) -> Validation {
        try validate(data, reusing: basis, keepingBasis: true, version: version)
    }

    private static func validate(
        _ data: Data,
        reusing basis: RouteTableBasis?,
        keepingBasis: Bool,
        version: String? = nil
    ) throws(RouteTableError) -> Validation {
        let document = try RouteTableJSON.read(data)
        let located = keepingBasis ? data.withUnsafeBytes { JSONRouteRanges.locate(in: $0) } : nil
        var validator = RouteTableValidator()
        if let basis, let located, basis.sharesContext(with: data, routesArray: located.array),
            Self.routeCount(of: document) == located.elements.count
        {
            validator.reused = data.withUnsafeBytes { bytes in
                located.elements.enumerated().map { basis.route(for: RawBytes.slice(bytes, $1), at: $0) }
            }
        }
        var steps: [RouteTableValidator.PathStep] = []
        let json = validator.value(of: document, steps: &steps)
        guard let parts = validator.validate(json), validator.problemCount == 0 else {
            throw validator.error
        }
        let table: RouteTable
        do {
            table = try RouteTable(
                upstreams: parts.upstreams,
                defaultUpstream: parts.defaultUpstream,
                routes: parts.routes,
                version: version ?? ContentHash.hex(of: data)
            )
        } catch let error as RouteTableError {
            throw error
        } catch {
            throw RouteTableError(problems: [.init(path: "routes", message: "\(error)")])
        }
        let reusedCount = validator.reused.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
        return Validation(
            table: table,
            basis: located.flatMap { RouteTableBasis(data: data, located: $0, routes: parts.routes) },
            validatedRoutes: parts.routes.count - reusedCount
        )
    }

    /// How many elements the first "routes" member has, as the validator reads it.
    private static func routeCount(of document: JSONDocument) -> Int? {
        guard case .object(let members) = document, case .array(let items)? = members.first(where: { $0.key == "routes" })?.value
        else { return nil }
        return items.count
    }

    /// The route for a request, if any route matches it.
    public func match(method: String, uri: String) -> Route? {
        matcher.match(method: method, uri: uri)
    }
}

/// A short, stable content hash (64-bit FNV-1a, hex) used as a table version.
public enum ContentHash {
    /// Hex digest of `data`.
    public static func hex(of data: Data) -> String {
        // Over the raw bytes: Data's iterator costs several times the hash itself on a
        // 10 MB table.
        data.withUnsafeBytes { hex(of: $0) }
    }

    /// Hex digest of `data`.
    public static func hex(of data: some Sequence<UInt8>) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let text = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}

extension RouteTable {
    /// A copy whose named upstreams point at other addresses; used by `strangler demo` when its
    /// ports are moved with flags. The version stays the file's, so reloads still compare.
    public func replacingUpstreamAddresses(_ addresses: [String: (host: String, port: Int)]) -> RouteTable {
        guard !addresses.isEmpty else { return self }
        var upstreams = self.upstreams
        for (name, address) in addresses {
            guard var upstream = upstreams[name] else { continue }
            upstream.host = address.host
            upstream.port = address.port
            upstream.url = "\(upstream.isTLS ? "https" : "http")://\(upstream.authority)\(upstream.basePath)"
            upstreams[name] = upstream
        }
        return try! RouteTable(upstreams: upstreams, defaultUpstream: defaultUpstream, routes: routes, version: version)
    }
}
