/// Proves two JSON texts equal as JSON from their bytes, without building documents.
///
/// A shadowed route's two answers are usually equal as JSON but not byte for byte: the new
/// service orders keys or spaces its output differently. Parsing both into ``JSONDocument``s to
/// find nothing cost several times what the rest of the comparison did. This reads each text
/// once into a flat list of tokens that point into its bytes (no string is made), and pairs
/// object members by their raw key bytes.
///
/// It only ever answers "equal"; anything it can't settle cheaply is left to the full
/// comparison: escapes or non-ASCII bytes in a string (which are equal in more than one
/// spelling, and must be checked as UTF-8), numbers written differently (`1.0` and `1`),
/// repeated keys, and any text that is not valid JSON (which the full comparison reports as
/// uncomparable). Strict equality implies a match under every `compare` setting: `ignore`,
/// keyed arrays, numeric tolerance and coercion can only remove differences.
public enum JSONQuickEquality {
    /// True when `a` and `b` are proven to be equal JSON documents; false means "not proven".
    public static func provesEqual(_ a: [UInt8], _ b: [UInt8], maxDepth: Int = 256) -> Bool {
        guard let left = Tokens(a, maxDepth: maxDepth), let right = Tokens(b, maxDepth: maxDepth),
            left.nodes.count == right.nodes.count
        else { return false }
        var used = [Bool](repeating: false, count: right.nodes.count)
        return equal(left, 0, right, 0, used: &used)
    }

    private static func equal(_ a: Tokens, _ i: Int, _ b: Tokens, _ j: Int, used: inout [Bool]) -> Bool {
        let x = a.nodes[i]
        let y = b.nodes[j]
        guard x.kind == y.kind, x.count == y.count else { return false }
        switch x.kind {
        case .string, .number:
            return a.bytes(x) == b.bytes(y)
        case .null, .true, .false:
            return true
        case .array:
            var childA = i + 1
            var childB = j + 1
            for _ in 0..<x.count {
                guard equal(a, childA, b, childB, used: &used) else { return false }
                childA = a.nodes[childA].next
                childB = b.nodes[childB].next
            }
            return true
        case .object:
            // Members are key, value pairs. A key is looked for at the same place first, then
            // anywhere; a key matched twice is a repeated key, left to the full comparison.
            var keyA = i + 1
            var sameKeyB = j + 1
            for _ in 0..<x.count {
                let key = a.bytes(a.nodes[keyA])
                var keyB = -1
                if sameKeyB < y.next, !used[sameKeyB], b.bytes(b.nodes[sameKeyB]) == key {
                    keyB = sameKeyB
                } else {
                    var candidate = j + 1
                    while candidate < y.next {
                        if b.bytes(b.nodes[candidate]) == key {
                            keyB = candidate
                            break
                        }
                        candidate = b.nodes[candidate + 1].next
                    }
                    guard keyB >= 0, !used[keyB] else { return false }
                }
                used[keyB] = true
                guard equal(a, keyA + 1, b, keyB + 1, used: &used) else { return false }
                keyA = a.nodes[keyA + 1].next
                if sameKeyB < y.next { sameKeyB = b.nodes[sameKeyB + 1].next }
            }
            return true
        }
    }

    /// One value, in document order; a container's values follow it.
    private struct Node {
        enum Kind: UInt8 { case null, `true`, `false`, number, string, array, object }
        var kind: Kind
        /// The text of a string (between its quotes) or a number.
        var start = 0
        var end = 0
        /// Members of an object, items of an array.
        var count = 0
        /// The index of the node after this value and everything in it.
        var next = 0
    }

    /// A JSON text read into nodes; nil when it is not valid JSON or holds something this type
    /// does not settle (see ``JSONQuickEquality``). Follows ``JSONDocument``'s grammar.
    private struct Tokens {
        let text: [UInt8]
        var nodes: [Node] = []
        private var index = 0
        private let maxDepth: Int

        init?(_ text: [UInt8], maxDepth: Int) {
            self.text = text
            self.maxDepth = maxDepth
            nodes.reserveCapacity(text.count / 8)
            skipWhitespace()
            guard value(depth: 0) else { return nil }
            skipWhitespace()
            guard index == text.count else { return nil }
        }

        func bytes(_ node: Node) -> ArraySlice<UInt8> {
            text[node.start..<node.end]
        }

        private mutating func skipWhitespace() {
            while index < text.count, text[index] == 0x20 || text[index] == 0x0A || text[index] == 0x0D || text[index] == 0x09 {
                index += 1
            }
        }

        private mutating func value(depth: Int) -> Bool {
            guard index < text.count else { return false }
            switch text[index] {
            case UInt8(ascii: "{"): return container(.object, depth: depth + 1)
            case UInt8(ascii: "["): return container(.array, depth: depth + 1)
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal("true", .true)
            case UInt8(ascii: "f"): return literal("false", .false)
            case UInt8(ascii: "n"): return literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
            default: return false
            }
        }

        private mutating func literal(_ word: StaticString, _ kind: Node.Kind) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= text.count else { return false }
            for offset in 0..<count where text[index + offset] != word.utf8Start[offset] { return false }
            index += count
            nodes.append(Node(kind: kind, next: nodes.count + 1))
            return true
        }

        private mutating func string() -> Bool {
            index += 1
            let start = index
            while index < text.count {
                let byte = text[index]
                if byte == UInt8(ascii: "\"") {
                    nodes.append(Node(kind: .string, start: start, end: index, next: nodes.count + 1))
                    index += 1
                    return true
                }
                // Escapes and non-ASCII text: for the full comparison.
                if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { return false }
                index += 1
            }
            return false
        }

        private mutating func number() -> Bool {
            guard let end = JSONDocument.numberEnd(in: text, from: index) else { return false }
            nodes.append(Node(kind: .number, start: index, end: end, next: nodes.count + 1))
            index = end
            return true
        }

        private mutating func container(_ kind: Node.Kind, depth: Int) -> Bool {
            guard depth <= maxDepth else { return false }
            let close = kind == .object ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let me = nodes.count
            nodes.append(Node(kind: kind))
            index += 1
            skipWhitespace()
            var count = 0
            if index < text.count, text[index] == close {
                index += 1
            } else {
                while true {
                    skipWhitespace()
                    if kind == .object {
                        guard index < text.count, text[index] == UInt8(ascii: "\""), string() else { return false }
                        skipWhitespace()
                        guard index < text.count, text[index] == UInt8(ascii: ":") else { return false }
                        index += 1
                        skipWhitespace()
                    }
                    guard value(depth: depth) else { return false }
                    count += 1
                    skipWhitespace()
                    guard index < text.count else { return false }
                    if text[index] == UInt8(ascii: ",") {
                        index += 1
                    } else if text[index] == close {
                        index += 1
                        break
                    } else {
                        return false
                    }
                }
            }
            nodes[me].count = count
            nodes[me].next = nodes.count
            return true
        }
    }
}
