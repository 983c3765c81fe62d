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

    /// The next id as text.
    mutating func next() -> String {
        nextValue().string
    }

    /// The next id, as its two numbers: see ``RequestIDValue``.
    mutating func nextValue() -> RequestIDValue {
        counter &+= 1
        return .generated(prefix: prefix, counter: counter)
    }

    /// Writes a generated id's text, `prefix-counter` in hex, into `bytes` (at least
    /// ``length(counter:)`` long); returns the length written.
    static func write(prefix: UInt64, counter: UInt64, into bytes: UnsafeMutableRawBufferPointer) -> Int {
        let counterDigits = length(counter: counter) - 17
        let bytes = bytes.assumingMemoryBound(to: UInt8.self)
        writeHex(prefix, digits: 16, into: bytes, at: 0)
        bytes[16] = UInt8(ascii: "-")
        writeHex(counter, digits: counterDigits, into: bytes, at: 17)
        return 17 + counterDigits
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
