/// Where each element of a route table's top-level `"routes"` array lies in the file's bytes.
///
/// A reload compares each route's bytes with the table validated before it and validates again
/// only the routes whose bytes changed (see ``RouteTableBasis``). The scan runs on bytes that
/// ``JSONDocument`` has already parsed, so it only has to find boundaries; when it meets
/// anything it does not expect (a top-level member name with an escape in it, say) it gives up
/// and every route is validated, never the other way round.
enum JSONRouteRanges {
    /// The byte ranges of the `"routes"` array's elements, in order, or nil when the scan cannot
    /// tell them for certain.
    static func find(in bytes: UnsafeRawBufferPointer) -> [Range<Int>]? {
        locate(in: bytes)?.elements
    }

    /// The same, with the range of the whole array, brackets included.
    static func locate(in bytes: UnsafeRawBufferPointer) -> (array: Range<Int>, elements: [Range<Int>])? {
        var scanner = Scanner(bytes: bytes)
        scanner.skipSpace()
        guard scanner.take(UInt8(ascii: "{")) else { return nil }
        while true {
            scanner.skipSpace()
            guard scanner.peek == UInt8(ascii: "\""), let key = scanner.skipString() else { return nil }
            // A name spelled with an escape ("rout\u0065s") may be the routes member; rather
            // than decode it, reuse nothing.
            if bytes[key].contains(UInt8(ascii: "\\")) { return nil }
            scanner.skipSpace()
            guard scanner.take(UInt8(ascii: ":")) else { return nil }
            scanner.skipSpace()
            if bytes[key].elementsEqual("\"routes\"".utf8) {
                let start = scanner.index
                guard let elements = scanner.arrayElements() else { return nil }
                return (start..<scanner.index, elements)
            }
            guard scanner.skipValue() else { return nil }
            scanner.skipSpace()
            guard scanner.take(UInt8(ascii: ",")) else { return nil }
        }
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            index += 1
            return true
        }

        mutating func skipSpace() {
            while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
        }

        /// Skips a string starting at its opening quote; returns its range, quotes included.
        mutating func skipString() -> Range<Int>? {
            let start = index
            index += 1
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\\"): index += 2
                case UInt8(ascii: "\""):
                    index += 1
                    return start..<index
                default: index += 1
                }
            }
            return nil
        }

        /// Skips one value: a string, an object or array with everything in it, or a scalar.
        mutating func skipValue() -> Bool {
            guard let first = peek else { return false }
            switch first {
            case UInt8(ascii: "\""):
                return skipString() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while let byte = peek {
                    switch byte {
                    case UInt8(ascii: "\""):
                        guard skipString() != nil else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 {
                            index += 1
                            return true
                        }
                    default: break
                    }
                    index += 1
                }
                return false
            default:
                let start = index
                while let byte = peek, !Self.endsScalar(byte) { index += 1 }
                return index > start
            }
        }

        /// The ranges of the elements of the array starting here.
        mutating func arrayElements() -> [Range<Int>]? {
            guard take(UInt8(ascii: "[")) else { return nil }
            var ranges: [Range<Int>] = []
            skipSpace()
            if take(UInt8(ascii: "]")) { return ranges }
            while true {
                skipSpace()
                let start = index
                guard skipValue() else { return nil }
                ranges.append(start..<index)
                skipSpace()
                if take(UInt8(ascii: "]")) { return ranges }
                guard take(UInt8(ascii: ",")) else { return nil }
            }
        }

        static func endsScalar(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), 0x20, 0x0A, 0x0D, 0x09: true
            default: false
            }
        }
    }
}
