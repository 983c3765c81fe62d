import Foundation

/// A difference a reviewer accepted on a route: it leaves the mismatch rate and the gates, and
/// stays visible in reports with why and who.
public struct AcceptedDifference: Sendable, Hashable, Codable {
    public var id: Int64
    public var routeID: String
    /// A JSON pointer pattern: it covers itself and everything under it; `*` is any one segment.
    public var pointer: String
    public var reason: String
    /// Who accepted it.
    public var owner: String
    public var acceptedAt: Date
    /// When the acceptance lapses; nil for never.
    public var until: Date?
    /// When and by whom it was revoked, if it was.
    public var revokedAt: Date?
    public var revokedBy: String?

    /// Whether it counts at `date`: not revoked and not lapsed.
    public func isActive(at date: Date = Date()) -> Bool {
        revokedAt == nil && (until.map { $0 > date } ?? true)
    }
}
