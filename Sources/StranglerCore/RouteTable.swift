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
        let document = try RouteTableJSON.read(data)
        var validator = RouteTableValidator()
        var steps: [RouteTableValidator.PathStep] = []
        let json = validator.value(of: document, steps: &steps)
        guard let parts = validator.validate(json), validator.problemCount == 0 else {
            throw validator.error
        }
        do {
            return try RouteTable(
                upstreams: parts.upstreams, defaultUpstream: parts.defaultUpstream, routes: parts.routes,
                version: ContentHash.hex(of: data)
            )
        } catch let error as RouteTableError {
            throw error
        } catch {
            throw RouteTableError(problems: [.init(path: "routes", message: "\(error)")])
        }
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
            upstream.url = "http://\(address.host):\(address.port)\(upstream.basePath)"
            upstreams[name] = upstream
        }
        return try! RouteTable(upstreams: upstreams, defaultUpstream: defaultUpstream, routes: routes, version: version)
    }
}
