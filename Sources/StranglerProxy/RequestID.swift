/// Request ids: kept when the client sent a sane one, otherwise generated cheaply.
enum RequestID {
    /// Accepts 1–128 characters of `A-Z a-z 0-9 - _ . : @ /`; anything else is replaced so that a
    /// hostile id can't inject into logs or headers.
    static func isValid(_ value: String) -> Bool {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= 128 else { return false }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"):
                continue
            default:
                return false
            }
        }
        return true
    }
}

/// Generates request ids on one event loop: a random per-loop prefix plus a counter, so
/// generating one needs no lock and no randomness per request. Ids look like
/// `3f9a0c1d2e4b5a69-0000002a`: 16 hex digits, a dash, at least 8 hex digits.
struct RequestIDGenerator {
    private let prefix: UInt64
    private var counter: UInt64 = 0

    init() {
        self.prefix = UInt64.random(in: 0...UInt64.max)
    }

    mutating func next() -> String {
        counter &+= 1
        let counter = self.counter
        let counterDigits = max(8, (64 - counter.leadingZeroBitCount + 3) / 4)
        // Written in place: one allocation per id rather than one per piece.
        return String(unsafeUninitializedCapacity: 17 + counterDigits) { bytes in
            Self.writeHex(prefix, digits: 16, into: bytes, at: 0)
            bytes[16] = UInt8(ascii: "-")
            Self.writeHex(counter, digits: counterDigits, into: bytes, at: 17)
            return 17 + counterDigits
        }
    }

    private static func writeHex(_ value: UInt64, digits: Int, into bytes: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
        var value = value
        for offset in stride(from: digits - 1, through: 0, by: -1) {
            let nibble = UInt8(truncatingIfNeeded: value & 0xF)
            bytes[start + offset] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            value >>= 4
        }
    }
}
