import Foundation

/// `routes.json` as an editable document: the file's own members in their own order, with
/// numbers kept as written, plus the validated ``RouteTable`` it describes.
///
/// Edits change only the members they name and are written back in one canonical layout, so a
/// mode flip is a one-line diff in git. A document is only ever built from, or turned into,
/// content that passes validation: an edit that would break the table throws instead.
public struct RouteTableDocument: Sendable {
    /// The parsed file, members in file order.
    public private(set) var root: JSONDocument
    /// The table the document describes.
    public private(set) var table: RouteTable

    /// Parses and validates `routes.json` content.
    public init(data: Data) throws(RouteTableError) {
        table = try RouteTable.parse(data)
        do {
            root = try JSONDocument.parse(data)
        } catch {
            throw RouteTableError(problems: [.init(path: "$", message: "not valid JSON: \(error)")])
        }
    }

    /// The document in the canonical layout, as written by every edit.
    public var formatted: Data {
        Data(RouteTableFormatter.format(root).utf8)
    }

    /// One route's JSON object as in the file (compact), for the audit trail.
    public func routeJSON(id: String) -> String? {
        routeMember(id: id).map { $0.1.value.text }
    }

    /// Sets a route's mode, and its canary percentage when given (or when the route enters
    /// `canary` without one: `defaultCanaryPercent`).
    /// - Throws: ``RouteTableError`` naming the problem if the route is unknown or the edited
    ///   table would not validate; the document is then unchanged.
    public mutating func setMode(
        _ mode: RouteMode,
        percent: Double? = nil,
        route id: String,
        defaultCanaryPercent: Double = 5
    ) throws(RouteTableError) {
        guard let (index, member) = routeMember(id: id), case .object(var fields) = member.value else {
            throw RouteTableError(problems: [.init(path: "routes", message: "no route with id \"\(id)\"; known: \(knownIDs)")])
        }
        Self.set(&fields, "mode", .string(mode.rawValue))
        let existingPercent = table.routes.first { $0.id == id }?.canary?.percent
        if let percent {
            var canary = Self.object(fields, "canary") ?? []
            Self.set(&canary, "percent", .number(Self.numberText(percent)))
            Self.set(&fields, "canary", .object(canary))
        } else if mode == .canary, existingPercent == nil {
            var canary = Self.object(fields, "canary") ?? []
            Self.set(&canary, "percent", .number(Self.numberText(defaultCanaryPercent)))
            Self.set(&fields, "canary", .object(canary))
        }
        try replaceRoute(at: index, with: fields)
    }

    /// Replaces the whole document with other content (a rollback), validating it first.
    public mutating func replace(with data: Data) throws(RouteTableError) {
        self = try RouteTableDocument(data: data)
    }

    // MARK: - Internals

    private var knownIDs: String {
        table.routes.map(\.id).joined(separator: ", ")
    }

    private var routes: [JSONDocument] {
        guard case .object(let top) = root, let member = top.first(where: { $0.key == "routes" }), case .array(let items) = member.value
        else { return [] }
        return items
    }

    private func routeMember(id: String) -> (Int, (key: String, value: JSONDocument))? {
        for (index, item) in routes.enumerated() {
            if case .object(let fields) = item, fields.contains(where: { $0.key == "id" && $0.value == .string(id) }) {
                return (index, (key: id, value: item))
            }
        }
        return nil
    }

    private mutating func replaceRoute(at index: Int, with fields: [(key: String, value: JSONDocument)]) throws(RouteTableError) {
        guard case .object(var top) = root, let slot = top.firstIndex(where: { $0.key == "routes" }),
            case .array(var items) = top[slot].value
        else { return }
        items[index] = .object(fields)
        top[slot].value = .array(items)
        let candidate = JSONDocument.object(top)
        let table = try RouteTable.parse(Data(RouteTableFormatter.format(candidate).utf8))
        root = candidate
        self.table = table
    }

    private static func object(_ fields: [(key: String, value: JSONDocument)], _ key: String) -> [(key: String, value: JSONDocument)]? {
        guard let member = fields.first(where: { $0.key == key }), case .object(let inner) = member.value else { return nil }
        return inner
    }

    /// Sets `key`, keeping its place if present; a new key goes where the schema order puts it,
    /// so files written by hand and by the CLI look alike.
    private static func set(_ fields: inout [(key: String, value: JSONDocument)], _ key: String, _ value: JSONDocument) {
        if let index = fields.firstIndex(where: { $0.key == key }) {
            fields[index].value = value
            return
        }
        let rank = schemaOrder.firstIndex(of: key) ?? schemaOrder.count
        let position = fields.firstIndex { (schemaOrder.firstIndex(of: $0.key) ?? schemaOrder.count) > rank } ?? fields.count
        fields.insert((key, value), at: position)
    }

    /// Member order of a route (and of its `canary`) in the documented schema.
    static let schemaOrder = [
        "id", "description", "methods", "path", "match", "mode", "legacy", "service", "fallback", "shadow", "canary", "compare", "gate",
        "percent", "stickyKey",
    ]

    /// `12`, `12.5`: the shortest text that reads back as the same number.
    public static func numberText(_ value: Double) -> String {
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}

/// The canonical layout of `routes.json`: two-space indentation; the top level, `upstreams`,
/// `routes` and each route one member per line; anything smaller on one line when it fits.
public enum RouteTableFormatter {
    /// Width under which a nested value stays on one line.
    static let lineWidth = 110

    /// `document` in the canonical layout, ending with a newline.
    public static func format(_ document: JSONDocument) -> String {
        var out = ""
        write(document, into: &out, indent: 0, path: [], lead: 0)
        out += "\n"
        return out
    }

    /// Containers that always break: the top object, `upstreams`, `routes` and each route.
    private static func alwaysBreaks(_ path: [String]) -> Bool {
        path.isEmpty || path == ["upstreams"] || path == ["routes"] || (path.count == 2 && path[0] == "routes")
    }

    private static func write(_ value: JSONDocument, into out: inout String, indent: Int, path: [String], lead: Int) {
        let inline = inlineText(value)
        let breaks: Bool
        switch value {
        case .object(let members) where !members.isEmpty: breaks = alwaysBreaks(path) || lead + inline.count > lineWidth
        case .array(let items) where !items.isEmpty: breaks = alwaysBreaks(path) || lead + inline.count > lineWidth
        default: breaks = false
        }
        guard breaks else {
            out += inline
            return
        }
        let pad = String(repeating: " ", count: indent + 2)
        switch value {
        case .object(let members):
            out += "{\n"
            for (index, member) in members.enumerated() {
                out += pad
                let key = JSONDocument.quoted(member.key) + ": "
                out += key
                write(member.value, into: &out, indent: indent + 2, path: path + [member.key], lead: pad.count + key.count)
                out += index + 1 < members.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        case .array(let items):
            out += "[\n"
            for (index, item) in items.enumerated() {
                out += pad
                write(item, into: &out, indent: indent + 2, path: path + [String(index)], lead: pad.count)
                out += index + 1 < items.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        default:
            out += inline
        }
    }

    /// One-line text: `{ "a": 1, "b": [1, 2] }`.
    static func inlineText(_ value: JSONDocument) -> String {
        switch value {
        case .object(let members):
            if members.isEmpty { return "{}" }
            return "{ " + members.map { JSONDocument.quoted($0.key) + ": " + inlineText($0.value) }.joined(separator: ", ") + " }"
        case .array(let items):
            return "[" + items.map(inlineText).joined(separator: ", ") + "]"
        default:
            return value.text
        }
    }
}

extension RouteTableDocument {
    /// One route that differs between two documents: nil on the side where it does not exist.
    public struct RouteDifference: Sendable, Hashable {
        /// The route id; nil for a change outside the routes (upstreams, default upstream).
        public var routeID: String?
        /// The route's object as compact JSON in the old document (for a nil ``routeID``, everything
        /// outside `routes`); nil when the route did not exist there.
        public var before: String?
        /// The same in the new document; nil when the route was removed.
        public var after: String?
    }

    /// What differs from `old` to `new`, route by route, in `new`'s order then removed ones. A
    /// change outside the routes is one entry with a nil id.
    public static func differences(from old: RouteTableDocument?, to new: RouteTableDocument) -> [RouteDifference] {
        differences(from: old?.root, to: new.root)
    }

    /// The same for two parsed files, without validating them again: the audit of a reload
    /// compares a table that has just been validated with one that was live before it.
    ///
    /// Linear in the size of both files: each side's routes are indexed by id in one pass (a
    /// lookup per route by scanning the array made a 10,000-route audit take minutes).
    public static func differences(from old: JSONDocument?, to new: JSONDocument) -> [RouteDifference] {
        let oldRoutes = old.map(RoutesByID.init)
        let newRoutes = RoutesByID(new)
        var result: [RouteDifference] = []
        // Routes are compared as parsed values and written out only when they differ: writing
        // every route of a 10,000-route table as text took most of an audit's time.
        for (id, after) in newRoutes.inOrder {
            let before = oldRoutes?.byID[id]
            if before != after { result.append(.init(routeID: id, before: before?.text, after: after.text)) }
        }
        for (id, before) in oldRoutes?.inOrder ?? [] where newRoutes.byID[id] == nil {
            result.append(.init(routeID: id, before: before.text, after: nil))
        }
        if let old {
            let before = outsideRoutes(of: old)
            let after = outsideRoutes(of: new)
            if before != after { result.append(.init(routeID: nil, before: before, after: after)) }
        }
        return result
    }

    /// Every route's JSON object as in the file (compact), by id, from one pass over the file.
    public var routeJSONByID: [String: String] {
        RoutesByID(root).byID.mapValues(\.text)
    }

    /// Everything but `routes`, compact: upstreams and the default upstream.
    private static func outsideRoutes(of root: JSONDocument) -> String {
        guard case .object(let top) = root else { return "" }
        return JSONDocument.object(top.filter { $0.key != "routes" }).text
    }
}

/// A file's routes by id and in file order. An id that appears twice (only in a file that does
/// not validate) keeps its first route, as ``RouteTableDocument/routeJSON(id:)`` does.
private struct RoutesByID {
    var inOrder: [(id: String, route: JSONDocument)] = []
    var byID: [String: JSONDocument] = [:]

    init(_ root: JSONDocument) {
        guard case .object(let top) = root, let member = top.first(where: { $0.key == "routes" }),
            case .array(let items) = member.value
        else { return }
        byID.reserveCapacity(items.count)
        inOrder.reserveCapacity(items.count)
        for item in items {
            guard case .object(let fields) = item, let idField = fields.first(where: { $0.key == "id" }),
                case .string(let id) = idField.value, byID[id] == nil
            else { continue }
            byID[id] = item
            inOrder.append((id, item))
        }
    }
}

/// Durations as people type them on a command line: `30s`, `90m`, `24h`, `7d`.
public enum DurationText {
    /// Seconds in `text`, or nil when it is not a number followed by s, m, h or d.
    public static func seconds(_ text: String) -> Double? {
        guard let unit = text.last, let value = Double(text.dropLast()), value >= 0 else { return nil }
        switch unit {
        case "s": return value
        case "m": return value * 60
        case "h": return value * 3600
        case "d": return value * 86400
        default: return nil
        }
    }
}
