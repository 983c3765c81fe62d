/// What ``RouteMatch`` reads of a request: its host, its headers and its query, as the bytes the
/// client sent. The data plane's parsed head provides it without making strings, so checking a
/// route's predicates allocates nothing.
public protocol RouteMatchRequest {
    /// Calls `body` with the bytes of the host the request names (its `Host` header, or the
    /// authority of an absolute-form target), port included; nil when it names none.
    func withHost<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result
    /// Calls `body` with each value of the header `name` (its bytes, in lower case), in order,
    /// until `body` returns true; returns whether it did.
    func firstHeaderValue(named name: UnsafeRawBufferPointer, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool
    /// Calls `body` with the target's query, after "?" and before any "#"; nil without one.
    func withQuery<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result
}

extension RouteMatch {
    /// Whether `request` satisfies every predicate. The matcher checks its candidates the same
    /// way, from a flat copy of every route's predicates (``CompiledPredicates``).
    public func matches(_ request: some RouteMatchRequest) -> Bool {
        isEmpty || CompiledPredicates([self]).accepts(route: 0, request)
    }
}

/// Reading query parameters and cookies out of raw bytes, without copying them.
public enum RequestKeyValues {
    /// The query of a request target: after its first "?", before any "#"; nil without one.
    public static func query(of target: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let mark = target.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        let end = target[mark...].firstIndex(of: UInt8(ascii: "#")) ?? target.count
        return UnsafeRawBufferPointer(rebasing: target[(mark + 1)..<end])
    }

    /// Calls `body` with each value of query parameter `name`, percent-decoded into a small
    /// stack buffer for the comparison, until `body` returns true. Names compare after decoding.
    public static func firstQueryValue(
        in query: UnsafeRawBufferPointer,
        named name: UnsafeRawBufferPointer,
        where body: (UnsafeRawBufferPointer) -> Bool
    ) -> Bool {
        var start = 0
        while start <= query.count {
            let end = query[start...].firstIndex(of: UInt8(ascii: "&")) ?? query.count
            let pair = UnsafeRawBufferPointer(rebasing: query[start..<end])
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let key = UnsafeRawBufferPointer(rebasing: pair[..<(equals ?? pair.count)])
            if decodedEquals(key, name) {
                let value = UnsafeRawBufferPointer(rebasing: pair[(equals.map { $0 + 1 } ?? pair.count)...])
                if withDecoded(value, body) { return true }
            }
            start = end + 1
        }
        return false
    }

    /// Calls `body` with the value of each cookie `name` in one `Cookie` header value
    /// (`a=1; b=2`), until `body` returns true.
    public static func firstCookieValue(
        in header: UnsafeRawBufferPointer,
        named name: UnsafeRawBufferPointer,
        where body: (UnsafeRawBufferPointer) -> Bool
    ) -> Bool {
        var start = 0
        while start < header.count {
            let end = header[start...].firstIndex(of: UInt8(ascii: ";")) ?? header.count
            var pairStart = start
            while pairStart < end, header[pairStart] == UInt8(ascii: " ") || header[pairStart] == UInt8(ascii: "\t") { pairStart += 1 }
            let pair = UnsafeRawBufferPointer(rebasing: header[pairStart..<end])
            if let equals = pair.firstIndex(of: UInt8(ascii: "=")), UnsafeRawBufferPointer(rebasing: pair[..<equals]).elementsEqual(name) {
                var value = UnsafeRawBufferPointer(rebasing: pair[(equals + 1)...])
                // A quoted cookie value (RFC 6265 allows DQUOTE around it) compares without them.
                if value.count >= 2, value.first == UInt8(ascii: "\""), value.last == UInt8(ascii: "\"") {
                    value = UnsafeRawBufferPointer(rebasing: value.dropFirst().dropLast())
                }
                if body(value) { return true }
            }
            start = end + 1
        }
        return false
    }

    /// Whether `raw`, percent-decoded, is `name`.
    static func decodedEquals(_ raw: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer) -> Bool {
        PercentDecoded(raw).elementsEqual(name)
    }

    /// Calls `body` with `raw` percent-decoded: as it is when it holds no escape, else decoded
    /// into a temporary buffer (on the stack when it is small).
    private static func withDecoded(_ raw: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        guard raw.contains(UInt8(ascii: "%")) else { return body(raw) }
        return withUnsafeTemporaryAllocation(byteCount: raw.count, alignment: 1) { buffer in
            var count = 0
            for byte in PercentDecoded(raw) {
                buffer[count] = byte
                count += 1
            }
            return body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }

    /// The bytes of `raw` with each `%XX` escape decoded; a `%` without two hex digits stays.
    private struct PercentDecoded: Sequence, IteratorProtocol {
        let raw: UnsafeRawBufferPointer
        var index = 0

        init(_ raw: UnsafeRawBufferPointer) {
            self.raw = raw
        }

        mutating func next() -> UInt8? {
            guard index < raw.count else { return nil }
            let byte = raw[index]
            if byte == UInt8(ascii: "%"), index + 2 < raw.count, let high = hex(raw[index + 1]), let low = hex(raw[index + 2]) {
                index += 3
                return high << 4 | low
            }
            index += 1
            return byte
        }
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
