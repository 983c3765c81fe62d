import Foundation

extension RouteTableDocument {
    /// What differs between two valid route table files, as
    /// ``differences(from:to:)-(JSONDocument?,JSONDocument)`` finds for them parsed, with the same
    /// result.
    ///
    /// The audit runs after every reload. Parsing both files of a 10,000-route table to compare
    /// them cost more CPU than validating the new one, all to find the one route an operator
    /// flipped. Here a route whose bytes appear unchanged in the other file (at the same position
    /// or anywhere) is equal without being parsed; only the others are parsed and compared by id.
    /// When anything outside the routes array differs, both files are parsed whole.
    ///
    /// Both files must be tables that validated (the audit compares tables that went live): only
    /// then are ids unique and member names single, which the shortcut relies on.
    public static func differences(from old: Data, to new: Data) -> [RouteDifference] {
        old.withUnsafeBytes { oldBytes in
            new.withUnsafeBytes { newBytes in
                quickDifferences(from: oldBytes, to: newBytes)
            }
        } ?? fullDifferences(from: old, to: new)
    }

    private static func fullDifferences(from old: Data, to new: Data) -> [RouteDifference] {
        guard let current = try? JSONDocument.parse(new) else { return [] }
        return differences(from: try? JSONDocument.parse(old), to: current)
    }

    /// Nil when the files cannot be compared route by route.
    private static func quickDifferences(from old: UnsafeRawBufferPointer, to new: UnsafeRawBufferPointer) -> [RouteDifference]? {
        guard let (oldArray, oldRoutes) = JSONRouteRanges.locate(in: old), let (newArray, newRoutes) = JSONRouteRanges.locate(in: new),
            RawBytes.equal(RawBytes.slice(old, 0..<oldArray.lowerBound), RawBytes.slice(new, 0..<newArray.lowerBound)),
            RawBytes.equal(RawBytes.slice(old, oldArray.upperBound..<old.count), RawBytes.slice(new, newArray.upperBound..<new.count))
        else { return nil }

        var oldByHash: [Int: Int] = [:]
        oldByHash.reserveCapacity(oldRoutes.count)
        for (index, range) in oldRoutes.enumerated() { oldByHash[RawBytes.hash(RawBytes.slice(old, range))] = index }
        var oldMatched = [Bool](repeating: false, count: oldRoutes.count)
        var newUnmatched: [Int] = []
        for (position, range) in newRoutes.enumerated() {
            let bytes = RawBytes.slice(new, range)
            if position < oldRoutes.count, !oldMatched[position], RawBytes.equal(RawBytes.slice(old, oldRoutes[position]), bytes) {
                oldMatched[position] = true
            } else if let index = oldByHash[RawBytes.hash(bytes)], !oldMatched[index], RawBytes.equal(RawBytes.slice(old, oldRoutes[index]), bytes) {
                oldMatched[index] = true
            } else {
                newUnmatched.append(position)
            }
        }

        // Only the routes without an identical copy are parsed. A file that went live is valid,
        // so its routes are objects with unique ids; anything else is compared whole.
        func parsed(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> (id: String, route: JSONDocument)? {
            guard let route = try? JSONDocument.parse(RawBytes.slice(bytes, range)), case .object(let fields) = route,
                case .string(let id)? = fields.first(where: { $0.key == "id" })?.value
            else { return nil }
            return (id, route)
        }
        var before: [String: JSONDocument] = [:]
        var removed: [(id: String, route: JSONDocument)] = []
        for index in oldRoutes.indices where !oldMatched[index] {
            guard let route = parsed(old, oldRoutes[index]), before[route.id] == nil else { return nil }
            before[route.id] = route.route
            removed.append(route)
        }
        var result: [RouteDifference] = []
        var added: Set<String> = []
        for position in newUnmatched {
            guard let (id, after) = parsed(new, newRoutes[position]), added.insert(id).inserted else { return nil }
            if before[id] != after { result.append(.init(routeID: id, before: before[id]?.text, after: after.text)) }
        }
        for (id, route) in removed where !added.contains(id) {
            result.append(.init(routeID: id, before: route.text, after: nil))
        }
        return result
    }
}
