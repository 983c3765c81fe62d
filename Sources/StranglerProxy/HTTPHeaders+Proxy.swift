import NIOHTTP1

extension HTTPHeaders {
    /// Headers that describe one hop's connection rather than the message (RFC 9110 §7.6.1).
    /// `TE` is handled apart because `TE: trailers` may pass.
    static let hopByHopNames: [String] = [
        "connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Removes hop-by-hop headers: the fixed list plus any named in `Connection`.
    ///
    /// - Parameter keepTrailersTE: keep `TE: trailers` (requests only), per DESIGN.md §8.
    mutating func removeHopByHop(keepTrailersTE: Bool = false) {
        var wantsTrailers = false
        if keepTrailersTE {
            for value in self[canonicalForm: "te"] where value.lowercased() == "trailers" {
                wantsTrailers = true
            }
        }
        // Names listed in Connection are hop-by-hop too; collect them before Connection goes.
        if self.contains(name: "connection") {
            for token in self[canonicalForm: "connection"] {
                let name = token.lowercased()
                if name != "close", name != "keep-alive" { self.remove(name: String(name)) }
            }
        }
        for name in Self.hopByHopNames where self.contains(name: name) {
            self.remove(name: name)
        }
        if wantsTrailers { self.add(name: "te", value: "trailers") }
    }
}
