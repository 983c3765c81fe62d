import Foundation

/// One row of the audit trail: a route (or the whole table) changed, by whom, why, and from
/// what to what.
public struct RouteChange: Sendable, Hashable, Codable {
    /// Where a change came from, as stored in `route_changes.source`.
    public enum Source: String, Sendable, Hashable, Codable, CaseIterable {
        /// `strangler routes ...` editing the file.
        case cli
        /// The admin API.
        case admin
        /// Somebody edited the file (by hand, `git checkout`...) and the proxy loaded it.
        case file
        /// The proxy itself: a canary's auto-demote.
        case auto
    }

    /// Row id; nil before it is stored.
    public var id: Int64?
    /// When the change was made.
    public var changedAt: Date
    /// `--actor`, else the admin token's name, else the OS user, else `file`.
    public var actor: String
    /// Where the change came from.
    public var source: Source
    /// The route that changed; nil for a change outside any route (upstreams, default upstream).
    public var routeID: String?
    /// Why, as given with the change (`--reason`, the API's `reason`, auto-demote's figures); nil
    /// when none was given.
    public var reason: String?
    /// The route's JSON before and after; nil when it did not exist on that side.
    public var before: String?
    /// The route's JSON after the change; nil when the change removed it.
    public var after: String?
    /// The table's version (content hash) before the change; nil when there was no table before.
    public var tableVersionBefore: String?
    /// The table's version after the change.
    public var tableVersionAfter: String

    /// A change from its parts; `id` stays nil until
    /// ``SQLiteDiffStore/recordChanges(_:tableContent:)`` stores it.
    public init(
        id: Int64? = nil,
        changedAt: Date = Date(),
        actor: String,
        source: Source,
        routeID: String?,
        reason: String?,
        before: String?,
        after: String?,
        tableVersionBefore: String?,
        tableVersionAfter: String
    ) {
        self.id = id
        self.changedAt = changedAt
        self.actor = actor
        self.source = source
        self.routeID = routeID
        self.reason = reason
        self.before = before
        self.after = after
        self.tableVersionBefore = tableVersionBefore
        self.tableVersionAfter = tableVersionAfter
    }

    /// The route's mode on each side, read from the stored JSON, for one-line summaries.
    public var modes: (before: String?, after: String?) {
        (Self.mode(in: before), Self.mode(in: after))
    }

    private static func mode(in json: String?) -> String? {
        guard let json, let data = json.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        var text = object["mode"] as? String
        if text == "canary", let canary = object["canary"] as? [String: Any], let percent = canary["percent"] as? NSNumber {
            text! += " \(percent)%"
        }
        return text
    }
}
