/// What the proxy does with a request path that upstreams read in different ways
/// (``PathAmbiguity``): an encoded `/`, a `\`, a dot segment spelled with `%2E`, a `..` after
/// `//`, or a `;` segment parameter.
///
/// Routing on one reading of such a path while the upstream that gets it acts on another is how
/// a request reaches a function the route table moved away from it. The safe answers are to
/// refuse the path, or to forward it only when its route does not depend on the reading.
/// Routing on one chosen reading and forwarding (what a plain "forward" would do) is not offered:
/// `/inventory%2FSKU-1` routes to the default upstream when `%2F` is read as data, and a legacy
/// upstream that decodes it before routing then serves the retired `/inventory/**` function.
public enum AmbiguousPathPolicy: String, Sendable, CaseIterable, Hashable {
    /// Answer 400 to any ambiguous path, before routing. The default: no client needs such a
    /// path except to reach something a route does not send it to.
    case reject
    /// Route the path under every reading of the ambiguities it has; forward it, byte for byte,
    /// only if every reading picks the same route (or every one picks none), else answer 400.
    /// For clients that legitimately send, say, `%2F` inside a catch-all route's path. The
    /// readings covered are the ones listed in ``PathAmbiguity``; an upstream with a reading of
    /// its own beyond those is not covered.
    case forwardWhenRoutesAgree = "forward-when-routes-agree"
}
