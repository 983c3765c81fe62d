/// Whether this instance runs the cluster's duties now: pruning the shared store by the retention
/// policy, and judging canaries for auto-demote.
///
/// Several instances sharing one PostgreSQL store would otherwise each prune the same rows and
/// each demote the same canary; one of them, the leader, does it for all (``PostgresLeadership``).
/// A single instance with its own SQLite file is always its own leader
/// (``SingleInstanceLeadership``).
///
/// Read it at the moment of acting, not once at start: leadership moves when the leader stops or
/// loses the database.
public protocol Leadership: Sendable {
    /// Whether this instance is the leader now.
    var isLeader: Bool { get }
}

/// The leadership of an instance that shares its store with no other: it is always the leader.
public struct SingleInstanceLeadership: Leadership {
    /// Always true: there is no other instance to leave the duties to.
    public var isLeader: Bool { true }

    /// The only leadership a lone instance has.
    public init() {}
}
