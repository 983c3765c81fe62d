/// The parts of an upstream URL the data plane needs.
struct UpstreamURL {
    var host: String
    var port: Int
    var basePath: String

    enum Parsed {
        case success(UpstreamURL)
        /// A URL, but one the data plane can't use; the text says why.
        case failure(String)
    }

    /// nil when the text is not a URL at all; `.failure` when it is one we cannot use.
    static func parse(_ text: String) -> Parsed? {
        guard let schemeEnd = text.range(of: "://") else { return nil }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" else {
            if scheme == "https" {
                return .failure("https upstreams are not supported yet; put a TLS-terminating sidecar in front or use http on a private network")
            }
            return .failure("unsupported scheme \"\(scheme)\"; use http://")
        }
        var rest = text[schemeEnd.upperBound...]
        var basePath = ""
        if let slash = rest.firstIndex(of: "/") {
            basePath = String(rest[slash...])
            rest = rest[..<slash]
        }
        if basePath.contains("?") || basePath.contains("#") {
            return .failure("must not have a query or fragment")
        }
        while basePath.hasSuffix("/") { basePath.removeLast() }
        if rest.contains("@") { return .failure("must not contain credentials") }
        var host = String(rest)
        var port = 80
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            let inner = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) else { return .failure("bad port") }
                port = parsed
            } else if !after.isEmpty {
                return nil
            }
            host = inner
        } else if let colon = host.lastIndex(of: ":") {
            guard let parsed = Int(host[host.index(after: colon)...]), (1...65535).contains(parsed) else {
                return .failure("port must be a number from 1 to 65535")
            }
            port = parsed
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { return nil }
        return .success(UpstreamURL(host: host, port: port, basePath: basePath))
    }
}
