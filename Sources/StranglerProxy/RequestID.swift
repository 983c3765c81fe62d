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
/// generating one needs no lock and no randomness per request.
struct RequestIDGenerator {
    private let prefix: String
    private var counter: UInt64 = 0

    init() {
        let random = UInt64.random(in: 0...UInt64.max)
        let text = String(random, radix: 16)
        self.prefix = String(repeating: "0", count: 16 - text.count) + text
    }

    mutating func next() -> String {
        counter &+= 1
        let text = String(counter, radix: 16)
        return prefix + "-" + String(repeating: "0", count: max(0, 8 - text.count)) + text
    }
}
