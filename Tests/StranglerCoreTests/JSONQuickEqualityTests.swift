import StranglerCore
import Testing

@Suite("JSON equality from bytes")
struct JSONQuickEqualityTests {
    /// A small seeded generator (SplitMix64), so a failure can be replayed.
    typealias Random = SeededRandom

    /// A JSON value as a tree, so it can be written in more than one way.
    indirect enum Value {
        case scalar(String)
        case array([Value])
        case object([(String, Value)])

        static func random(_ random: inout Random, depth: Int = 0) -> Value {
            switch depth > 3 ? random.below(4) : random.below(6) {
            case 0: return .scalar(["true", "false", "null"][random.below(3)])
            case 1: return .scalar(String(random.below(100_000)) + (random.below(2) == 0 ? "" : ".25"))
            case 2, 3:
                return .scalar("\"" + String(repeating: ["a", "b", "c", "d", "e", "f", "g", "h"][random.below(8)], count: random.below(20)) + "\"")
            case 4: return .array((0..<random.below(5)).map { _ in Value.random(&random, depth: depth + 1) })
            default:
                let keys = Set((0..<random.below(7)).map { _ in "k\(random.below(30))" })
                return .object(keys.sorted().map { ($0, Value.random(&random, depth: depth + 1)) })
            }
        }

        /// The text: compact and in order, or with whitespace and object members shuffled.
        func text(shuffled random: inout Random?) -> String {
            var space = ""
            if var generator = random {
                space = [" ", "\n", "\t ", ""][generator.below(4)]
                random = generator
            }
            switch self {
            case .scalar(let text): return text
            case .array(let items): return "[" + space + items.map { $0.text(shuffled: &random) }.joined(separator: "," + space) + "]"
            case .object(var members):
                if var generator = random {
                    for index in members.indices.reversed() { members.swapAt(index, generator.below(index + 1)) }
                    random = generator
                }
                return "{" + members.map { "\"\($0.0)\"" + space + ":" + $0.1.text(shuffled: &random) }.joined(separator: "," + space) + space + "}"
            }
        }
    }

    /// Equal as JSON by ``JSONDocument``'s parser and an equality written here (members in any
    /// order, numbers by their text): an oracle that shares nothing with the code under test.
    static func oracleEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        func equal(_ x: JSONDocument, _ y: JSONDocument) -> Bool {
            switch (x, y) {
            case (.object(let m), .object(let n)):
                return m.count == n.count && m.allSatisfy { member in n.contains { $0.key == member.key && equal(member.value, $0.value) } }
            case (.array(let m), .array(let n)):
                return m.count == n.count && zip(m, n).allSatisfy { equal($0, $1) }
            default:
                return x == y
            }
        }
        guard let x = try? JSONDocument.parse(a), let y = try? JSONDocument.parse(b) else { return false }
        return equal(x, y)
    }

    static func fullMatch(_ a: String, _ b: String) -> Bool {
        let json = [(name: "content-type", value: "application/json")]
        let comparison = ResponseComparator().compare(
            primary: CapturedResponse(status: 200, headers: json, body: Array(a.utf8)),
            candidate: CapturedResponse(status: 200, headers: json, body: Array(b.utf8))
        )
        return comparison.outcome == .match
    }

    @Test("500 random documents equal their reordered, re-spaced selves; one changed value is never proven equal")
    func randomDocuments() {
        var random = Random(state: 20_261_123)
        for round in 0..<500 {
            let value = Value.random(&random)
            var none: Random? = nil
            var shuffle: Random? = Random(state: random.next())
            let compact = value.text(shuffled: &none)
            let reordered = value.text(shuffled: &shuffle)
            #expect(JSONQuickEquality.provesEqual(Array(compact.utf8), Array(reordered.utf8)), "round \(round): \(compact) vs \(reordered)")
            #expect(Self.fullMatch(compact, reordered), "round \(round)")
            // A changed scalar: a digit or letter swapped somewhere.
            var bytes = Array(compact.utf8)
            let positions = bytes.indices.filter {
                bytes[$0] >= UInt8(ascii: "0") && bytes[$0] <= UInt8(ascii: "9") || bytes[$0] == UInt8(ascii: "a")
            }
            if !positions.isEmpty {
                let position = positions[random.below(positions.count)]
                bytes[position] =
                    bytes[position] == UInt8(ascii: "a")
                    ? UInt8(ascii: "b") : (bytes[position] == UInt8(ascii: "9") ? UInt8(ascii: "8") : bytes[position] + 1)
                // Every such edit changes a number, a string or a key, or breaks a literal.
                #expect(!Self.oracleEqual(Array(compact.utf8), bytes))
                #expect(
                    !JSONQuickEquality.provesEqual(Array(compact.utf8), bytes),
                    "round \(round): \(compact) vs \(String(decoding: bytes, as: UTF8.self))"
                )
            }
        }
    }

    @Test("whatever one byte's edit does to a document, equality is proven only where the documents are equal")
    func soundUnderEdits() {
        var random = Random(state: 7)
        let alphabet = Array(#"{}[]":,0123456789.-eE tfnaluxs\"#.utf8)
        var proven = 0
        for _ in 0..<3000 {
            var none: Random? = nil
            let original = Array(Value.random(&random).text(shuffled: &none).utf8)
            var edited = original
            let position = random.below(edited.count)
            switch random.below(3) {
            case 0: edited.remove(at: position)
            case 1: edited.insert(alphabet[random.below(alphabet.count)], at: position)
            default: edited[position] = alphabet[random.below(alphabet.count)]
            }
            if JSONQuickEquality.provesEqual(original, edited) {
                proven += 1
                #expect(
                    Self.oracleEqual(original, edited),
                    "\(String(decoding: original, as: UTF8.self)) vs \(String(decoding: edited, as: UTF8.self))"
                )
            }
        }
        // Some edits are harmless (a space in the right place); the check above must have run.
        #expect(proven > 0)
    }

    @Test("what it leaves to the full comparison: escapes, non-ASCII, other spellings of a number, repeated keys, invalid JSON, deep nesting")
    func leftToTheFullComparison() {
        func proves(_ a: String, _ b: String) -> Bool { JSONQuickEquality.provesEqual(Array(a.utf8), Array(b.utf8)) }
        #expect(proves(#"{"a": [1, "x", true, null], "b": {}}"#, #"{"b":{},"a":[1,"x",true,null]}"#))
        #expect(!proves(#"["A"]"#, #"["\u0041"]"#))
        #expect(!proves(#"["é"]"#, #"["é"]"#))
        #expect(!proves("[1.0]", "[1]"))
        #expect(!proves(#"{"a": 1, "a": 2}"#, #"{"a": 1, "a": 2}"#) || Self.fullMatch(#"{"a": 1, "a": 2}"#, #"{"a": 1, "a": 2}"#))
        #expect(!proves(#"{"a": 1, "a": 1}"#, #"{"a": 1, "b": 1}"#))
        #expect(!proves(#"{"a": 1, "b": 1}"#, #"{"a": 1, "a": 1}"#))
        for invalid in ["[1,]", "[01]", #"{"a" 1}"#, "[1", "", "tru", "[1] x", "{\"a\":1,}", "[\"\u{01}\"]"] {
            #expect(!proves(invalid, invalid), "\(invalid)")
        }
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(!proves(deep, deep))
        #expect(!proves("[1, 2]", "[2, 1]"))
        #expect(!proves(#"{"a": 1}"#, #"{"a": 1, "b": 2}"#))
    }
}
