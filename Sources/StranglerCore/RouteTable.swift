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

    /// Parses and validates `routes.json` content. Throws ``RouteTableError`` listing every problem.
    public static func parse(_ data: Data) throws(RouteTableError) -> RouteTable {
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw RouteTableError(problems: [.init(path: "$", message: "not valid JSON: \(describeSyntaxError(in: data))")])
        }
        var validator = RouteTableValidator()
        guard let parts = validator.validate(json), validator.problems.isEmpty else {
            throw RouteTableError(problems: validator.problems)
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

    /// Where the JSON syntax breaks, as "line L, column C". JSONDecoder does not say; Foundation's
    /// JSONSerialization reports a character offset, which is turned into a line and column here.
    private static func describeSyntaxError(in data: Data) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return "the document is not a JSON value"
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            guard let match = detail.range(of: #"character (\d+)"#, options: .regularExpression),
                let offset = Int(detail[match].dropFirst("character ".count))
            else { return detail }
            var line = 1
            var column = 1
            for byte in data.prefix(offset) {
                if byte == UInt8(ascii: "\n") {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            }
            let reason = detail.replacingOccurrences(of: #" around character \d+\.?"#, with: "", options: .regularExpression)
            return "\(reason) at line \(line), column \(column)"
        }
    }
}

/// A short, stable content hash (64-bit FNV-1a, hex) used as a table version.
public enum ContentHash {
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
