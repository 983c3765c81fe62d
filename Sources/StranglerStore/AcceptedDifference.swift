import Foundation

/// A difference a reviewer accepted on a route: it leaves the mismatch rate and the gates, and
/// stays visible in reports with why and who.
public struct AcceptedDifference: Sendable, Hashable, Codable {
    /// Row id, as `strangler diffs revoke` takes it.
    public var id: Int64
    /// The route it applies to.
    public var routeID: String
    /// A JSON pointer pattern: it covers itself and everything under it; `*` is any one segment.
    public var pointer: String
    /// Why it was accepted, as the reviewer gave it.
    public var reason: String
    /// Who accepted it.
    public var owner: String
    /// When it was accepted.
    public var acceptedAt: Date
    /// When the acceptance lapses; nil for never.
    public var until: Date?
    /// When it was revoked; nil unless it was revoked.
    public var revokedAt: Date?
    /// Who revoked it; nil unless it was revoked.
    public var revokedBy: String?

    /// Whether it counts at `date`: not revoked and not lapsed.
    public func isActive(at date: Date = Date()) -> Bool {
        revokedAt == nil && (until.map { $0 > date } ?? true)
    }
}
