import NIOCore

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

    /// The next id, as its two numbers: see ``RequestIDValue``.
    mutating func nextValue() -> RequestIDValue {
        counter &+= 1
        return .generated(prefix: prefix, counter: counter)
    }

    /// Writes a generated id's text, `prefix-counter` in hex, into `bytes` (at least
    /// ``length(counter:)`` long); returns the length written.
    static func write(prefix: UInt64, counter: UInt64, into bytes: UnsafeMutableRawBufferPointer) -> Int {
        // Eight digits at a time: the id goes into both heads of every request.
        bytes.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: prefix >> 32)), toByteOffset: 0, as: UInt64.self)
        bytes.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: prefix)), toByteOffset: 8, as: UInt64.self)
        bytes[16] = UInt8(ascii: "-")
        if counter <= UInt64(UInt32.max) {
            bytes.storeBytes(of: hexDigits(UInt32(counter)), toByteOffset: 17, as: UInt64.self)
            return 25
        }
        let counterDigits = length(counter: counter) - 17
        writeHex(counter, digits: counterDigits, into: bytes.assumingMemoryBound(to: UInt8.self), at: 17)
        return 17 + counterDigits
    }

    /// The eight lowercase hex digits of `value` as they lie in memory: most significant first.
    static func hexDigits(_ value: UInt32) -> UInt64 {
        // One nibble per byte, most significant nibble in the most significant byte.
        var spread = UInt64(value)
        spread = (spread | spread << 16) & 0x0000_FFFF_0000_FFFF
        spread = (spread | spread << 8) & 0x00FF_00FF_00FF_00FF
        spread = (spread | spread << 4) & 0x0F0F_0F0F_0F0F_0F0F
        // 1 in each byte whose nibble is 10 or more, which then needs "a" - "0" - 10 more.
        let letters = ((spread &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        let text = spread &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
        return UInt64(bigEndian: text)
    }

    /// The length of a generated id's text.
    static func length(counter: UInt64) -> Int {
        17 + max(8, (64 - counter.leadingZeroBitCount + 3) / 4)
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

/// A request's id as an exchange holds it: the client's own, or a generated one kept as its two
/// numbers. The heads get a generated id's hex digits written straight into their bytes, so a
/// request that never needs the id as text (no access log, no shadow, no error) builds no
/// `String` for it.
enum RequestIDValue: Equatable {
    case client(String)
    case generated(prefix: UInt64, counter: UInt64)

    /// The id as text, for logs, error bodies and comparison records.
    var string: String {
        switch self {
        case .client(let id):
            return id
        case .generated(let prefix, let counter):
            let length = RequestIDGenerator.length(counter: counter)
            return String(unsafeUninitializedCapacity: length) { bytes in
                RequestIDGenerator.write(prefix: prefix, counter: counter, into: UnsafeMutableRawBufferPointer(bytes))
            }
        }
    }

    /// The length of the id's text in bytes.
    var utf8Count: Int {
        switch self {
        case .client(let id): id.utf8.count
        case .generated(_, let counter): RequestIDGenerator.length(counter: counter)
        }
    }
}

extension ByteBuffer {
    /// Writes a request id's text.
    @discardableResult
    mutating func writeRequestID(_ id: RequestIDValue) -> Int {
        switch id {
        case .client(let text):
            return writeString(text)
        case .generated(let prefix, let counter):
            return writeWithUnsafeMutableBytes(minimumWritableBytes: RequestIDGenerator.length(counter: counter)) { bytes in
                RequestIDGenerator.write(prefix: prefix, counter: counter, into: bytes)
            }
        }
    }
}
