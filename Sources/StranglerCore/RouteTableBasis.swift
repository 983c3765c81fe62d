import Foundation

/// What the validation of a valid table leaves for the next one: the file's bytes, where each
/// route lies in them, and the route each became.
///
/// An edit usually changes a few routes of many: an operator flips one route's mode, a promotion
/// changes one route's canary percent. Validating a 10,000-route table again from nothing costs
/// about 100 ms of CPU, taken from the event loops on a busy machine. With a basis, a route whose
/// bytes are identical to a route of the earlier table, under identical upstreams and default
/// upstream, takes that route's validated value; only changed routes are validated again. Checks
/// across routes (unique ids, ambiguity) always run over the whole table, and the matcher is
/// always built new.
///
/// Reuse is decided by comparing bytes, never by a hash alone, so a reused route is exactly one
/// that was validated before.
public struct RouteTableBasis: Sendable {
    /// The file the routes were validated from.
    let data: Data
    /// Where each route lies in `data`, in the order of `routes`.
    let ranges: [Range<Int>]
    /// Every route of the table, in file order (a valid table has one per element of "routes").
    let routes: [Route]
    /// The top-level members other than "routes": upstreams and the default upstream, on which a
    /// route's validation also depends.
    let context: [(key: String, value: JSONDocument)]
    /// The index of a route by a hash of its bytes, to find a route that moved.
    let indexByHash: [Int: Int]

    init?(data: Data, ranges: [Range<Int>]?, routes: [Route], context: [(key: String, value: JSONDocument)]) {
        guard let ranges, ranges.count == routes.count else { return nil }
        self.data = data
        self.ranges = ranges
        self.routes = routes
        self.context = context
        var indexByHash: [Int: Int] = [:]
        indexByHash.reserveCapacity(ranges.count)
        data.withUnsafeBytes { bytes in
            for (index, range) in ranges.enumerated() {
                indexByHash[RawBytes.hash(RawBytes.slice(bytes, range))] = index
            }
        }
        self.indexByHash = indexByHash
    }

    /// Whether routes validated under `context` are valid under this basis's context.
    func sharesContext(_ context: [(key: String, value: JSONDocument)]) -> Bool {
        self.context.count == context.count && zip(self.context, context).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// The validated route whose bytes are `bytes`: first the route at the same position, then
    /// any route with those bytes.
    func route(for bytes: UnsafeRawBufferPointer, at position: Int) -> Route? {
        data.withUnsafeBytes { old in
            if position < ranges.count, RawBytes.equal(RawBytes.slice(old, ranges[position]), bytes) {
                return routes[position]
            }
            guard let index = indexByHash[RawBytes.hash(bytes)],
                RawBytes.equal(RawBytes.slice(old, ranges[index]), bytes)
            else { return nil }
            return routes[index]
        }
    }
}
