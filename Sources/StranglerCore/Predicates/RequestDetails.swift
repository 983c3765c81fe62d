/// A request described by strings, for matching outside the data plane (``RouteMatcher/match(method:uri:)``,
/// tools and tests). The proxy reads its parsed head's bytes instead.
public struct RequestDetails: RouteMatchRequest, Sendable {
    /// The request target: path, then any query.
    public var target: String
    /// Header lines as sent, names in any case; a `Host` line names the host.
    public var headers: [(name: String, value: String)]

    /// A request for `target` with these header lines.
    public init(target: String, headers: [(name: String, value: String)] = []) {
        self.target = target
        self.headers = headers
    }

    public func withHost<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        guard var host = headers.first(where: { $0.name.lowercased() == "host" })?.value else { return body(nil) }
        return host.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }

    public func firstHeaderValue(named name: UnsafeRawBufferPointer, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        for header in headers where header.name.lowercased().utf8.elementsEqual(name) {
            var value = header.value
            if value.withUTF8({ body(UnsafeRawBufferPointer($0)) }) { return true }
        }
        return false
    }

    public func withQuery<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        var target = target
        return target.withUTF8 { body(RequestKeyValues.query(of: UnsafeRawBufferPointer($0))) }
    }
}
