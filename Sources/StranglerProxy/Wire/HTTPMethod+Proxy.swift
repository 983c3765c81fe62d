import NIOHTTP1

extension HTTPMethod {
    /// Methods whose requests normally carry a body: without one, the request says
    /// `Content-Length: 0` rather than nothing, which some servers refuse (411).
    var framingAlwaysExpectsBody: Bool {
        switch self {
        case .GET, .HEAD, .DELETE, .CONNECT, .TRACE: false
        default: true
        }
    }

    /// Methods whose repetition has no additional effect (RFC 9110 §9.2.2): safe to replay.
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: false
        }
    }
}
