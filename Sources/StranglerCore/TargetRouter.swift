/// Routes request targets on their normal paths: one per client connection, so that the buffer
/// an unusual path is normalised into is reused, and no lock is taken.
///
/// The rule (docs/architecture.md, "Routing"):
/// - the path is taken from the target by its form (``RequestTarget``): origin-form as is,
///   absolute-form after its authority; `OPTIONS *` routes nowhere (the default upstream);
/// - the route is matched on the path's normal form (``PathNormalizer``);
/// - a path with a spelling that upstreams read differently (``PathAmbiguity``) is refused, or
///   routed under each reading, as ``AmbiguousPathPolicy`` says;
/// - everything else that cannot be normalised is refused (``PathRefusal``).
///
/// Routing is all this changes: the target is forwarded as the client sent it.
public struct TargetRouter: Sendable {
    /// What is done with a path that upstreams read in different ways (`--ambiguous-paths`).
    public let policy: AmbiguousPathPolicy
    private var normalizer = PathNormalizer()
    /// Where the last routed path is, for ``routedPath(of:)``.
    private var last = Routed.nothing

    private enum Routed {
        /// No path (`OPTIONS *`), or the last target was refused.
        case nothing
        /// These bytes of the target, as sent.
        case target(Range<Int>)
        /// The normaliser's buffer.
        case normalized
    }

    /// A router for one client connection. `policy` is `--ambiguous-paths`; the default refuses
    /// ambiguous paths.
    public init(policy: AmbiguousPathPolicy = .reject) {
        self.policy = policy
    }

    /// The index in `matcher`'s table of the route for `target`, matched on its normal path
    /// and on route predicates `request` satisfies; nil when no route matches. Throws when the
    /// target must be refused with 400.
    ///
    /// An already-normal origin-form target, the usual one, costs one scan before the match and
    /// allocates nothing.
    public mutating func matchIndex(
        in matcher: RouteMatcher,
        method: String,
        target: UnsafeRawBufferPointer,
        request: some RouteMatchRequest
    ) throws(PathRefusal) -> Int? {
        if PathNormalizer.isNormal(target) {
            last = .target(0..<target.count)
            return matcher.matchIndex(method: method, target: target, request: request)
        }
        last = .nothing
        guard let range = try RequestTarget.path(in: target, method: method) else { return nil }
        let path = UnsafeRawBufferPointer(rebasing: target[range])
        if !path.isEmpty, PathNormalizer.isNormal(path) {
            // An absolute-form target with a normal path.
            last = .target(range)
            return matcher.matchIndex(method: method, target: path, request: request)
        }
        let found: PathAmbiguity
        do throws(PathRefusal) {
            // The reading with the most separators and dot segments shows every ambiguous kind.
            found = try normalizer.normalize(path, reading: .all)
        } catch {
            guard error.reason == .aboveRoot else { throw error }
            // A `..` that climbs above the root only once `%2F`, `\` or `%2E` are decoded: the
            // ambiguity is the problem, and the refusal says so.
            let literal = try normalizer.normalize(path, reading: [])
            guard !literal.isEmpty else { throw error }
            switch policy {
            case .reject: throw Self.ambiguous(literal)
            case .forwardWhenRoutesAgree: throw Self.oneReadingRefused(literal, error)
            }
        }
        if !found.isEmpty {
            switch policy {
            case .reject:
                throw Self.ambiguous(found)
            case .forwardWhenRoutesAgree:
                let index = try agreedIndex(in: matcher, method: method, path: path, found: found, request: request)
                last = .normalized
                return index
            }
        }
        last = .normalized
        return matchNormalized(in: matcher, method: method, request: request)
    }

    /// The route every reading of `path`'s ambiguous kinds picks, or a refusal when two differ
    /// or one is refused. The literal reading goes last, so that it is the one left in the
    /// buffer: the path of a `{param}` is read from it.
    private mutating func agreedIndex(
        in matcher: RouteMatcher,
        method: String,
        path: UnsafeRawBufferPointer,
        found: PathAmbiguity,
        request: some RouteMatchRequest
    ) throws(PathRefusal) -> Int? {
        var agreed: Int??
        // Every subset of `found`, from `found` itself down to the empty set.
        var reading = found.rawValue
        while true {
            do throws(PathRefusal) {
                try normalizer.normalize(path, reading: PathAmbiguity(rawValue: reading))
            } catch {
                throw Self.oneReadingRefused(found, error)
            }
            let index = matchNormalized(in: matcher, method: method, request: request)
            if let first = agreed, first != index {
                throw PathRefusal(
                    .readingsDisagree(found),
                    "the request path has \(found), and upstreams that read it in different ways would get it on different routes "
                        + "(\(name(first, matcher)) one way, \(name(index, matcher)) another)"
                )
            }
            agreed = index
            if reading == 0 { break }
            reading = (reading - 1) & found.rawValue
        }
        return agreed ?? nil
    }

    private static func ambiguous(_ found: PathAmbiguity) -> PathRefusal {
        PathRefusal(.ambiguous(found), "the request path has \(found), which upstreams read in different ways")
    }

    private static func oneReadingRefused(_ found: PathAmbiguity, _ refusal: PathRefusal) -> PathRefusal {
        PathRefusal(.readingsDisagree(found), "the request path has \(found), and one way of reading it is refused: \(refusal.message)")
    }

    private func matchNormalized(in matcher: RouteMatcher, method: String, request: some RouteMatchRequest) -> Int? {
        normalizer.path.withUnsafeBytes { matcher.matchIndex(method: method, target: $0, request: request) }
    }

    private func name(_ index: Int?, _ matcher: RouteMatcher) -> String {
        index.map { "route \"\(matcher.route(at: $0).id)\"" } ?? "the default upstream"
    }

    /// The path the last target was routed on, as text: the normal path, or the part of `uri`
    /// (the same target as text) that was already normal. For a `{param}` canary key, which
    /// then reads the same segment for every spelling of a path. Allocates only when the path
    /// is not `uri` itself.
    public func routedPath(of uri: String) -> String {
        switch last {
        case .nothing:
            return "/"
        case .target(let range):
            if range.lowerBound == 0 { return uri }
            let utf8 = uri.utf8
            guard range.upperBound <= utf8.count else { return "/" }
            let start = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
            return String(Substring(utf8[start..<utf8.index(start, offsetBy: range.count)]))
        case .normalized:
            return String(decoding: normalizer.path, as: UTF8.self)
        }
    }
}
