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
/// that was validated before; and everything outside the "routes" array (upstreams, the default
/// upstream) must be byte for byte the same, since a route's validity depends on it.
public struct RouteTableBasis: Sendable {
    /// The file the routes were validated from.
    let data: Data
    /// Where the "routes" array lies in `data`, brackets included.
    let routesArray: Range<Int>
    /// Where each route lies in `data`, in the order of `routes`.
    let ranges: [Range<Int>]
    /// Every route of the table, in file order (a valid table has one per element of "routes").
    let routes: [Route]
    /// The index of a route by a hash of its bytes, to find a route that moved.
    let indexByHash: [Int: Int]

    init?(data: Data, located: (array: Range<Int>, elements: [Range<Int>]), routes: [Route]) {
        guard located.elements.count == routes.count else { return nil }
        self.data = data
        self.routesArray = located.array
        self.ranges = located.elements
        self.routes = routes
        var indexByHash: [Int: Int] = [:]
        indexByHash.reserveCapacity(ranges.count)
        data.withUnsafeBytes { bytes in
            for (index, range) in located.elements.enumerated() {
                indexByHash[RawBytes.hash(RawBytes.slice(bytes, range))] = index
            }
        }
        self.indexByHash = indexByHash
    }

    /// Whether `other`, whose "routes" array lies at `array`, has the same bytes as this basis's
    /// file everywhere outside that array: then routes validated here are valid there.
    func sharesContext(with other: Data, routesArray array: Range<Int>) -> Bool {
        data.withUnsafeBytes { old in
            other.withUnsafeBytes { new in
                RawBytes.equal(RawBytes.slice(old, 0..<routesArray.lowerBound), RawBytes.slice(new, 0..<array.lowerBound))
                    && RawBytes.equal(RawBytes.slice(old, routesArray.upperBound..<old.count), RawBytes.slice(new, array.upperBound..<new.count))
            }
        }
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
