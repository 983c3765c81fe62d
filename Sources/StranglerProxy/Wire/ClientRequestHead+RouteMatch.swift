import StranglerCore

/// Route predicates read the parsed head in place: the host, header values and query are
/// handed over as slices of the bytes the client sent, so checking them makes no strings.
extension ClientRequestHead: RouteMatchRequest {
    /// The `Host` header's value, or for an HTTP/1.0 request without one, an absolute-form
    /// target's authority (the parser makes the two agree when both are there).
    func withHost<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        bytes.withUnsafeReadableBytes { raw in
            if let field = fields.first(where: { $0.kind == .host }) {
                return body(UnsafeRawBufferPointer(rebasing: raw[field.value]))
            }
            if let authority = Self.absoluteAuthority(raw, target: target) {
                return body(UnsafeRawBufferPointer(rebasing: raw[authority]))
            }
            return body(nil)
        }
    }

    /// Each value of header `name`, in order. Names with an underscore are passed over, as
    /// they are never forwarded (``ProxyHeaderName/underscored``).
    func firstHeaderValue(named name: UnsafeRawBufferPointer, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        bytes.withUnsafeReadableBytes { raw in
            for field in fields
            where field.kind != .underscored && HTTPHeadSyntax.name(UnsafeRawBufferPointer(rebasing: raw[field.name]), isLowercase: name) {
                if body(UnsafeRawBufferPointer(rebasing: raw[field.value])) { return true }
            }
            return false
        }
    }

    /// The target's query: after its first "?", before any "#".
    func withQuery<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        bytes.withUnsafeReadableBytes { raw in body(RequestKeyValues.query(of: UnsafeRawBufferPointer(rebasing: raw[target]))) }
    }
}
