import Foundation

/// Compares a primary and a candidate response under a route's `compare` rules (README.md, "The
/// route table: `routes.json`": the `compare` key, and Shadow mode).
///
/// Status is compared exactly, headers only when listed, and bodies structurally when they are
/// JSON: each difference gets an RFC 6901 pointer, a kind and both values. Non-JSON bodies are
/// compared as text (first differing line) or, when not UTF-8, as bytes.
public struct ResponseComparator: Sendable {
    /// The route's `compare` rules.
    public let settings: CompareSettings
    /// Most differences kept per comparison; the rest are counted in `omitted`.
    public let maxDifferences: Int
    /// Longest value text kept in a difference.
    public let maxValueLength: Int
    private let ignore: [PointerPattern]
    private let arrayKeys: [(pattern: PointerPattern, key: String)]

    /// - Parameters:
    ///   - settings: the route's `compare` rules.
    ///   - maxDifferences: most differences kept per comparison; the rest are only counted.
    ///   - maxValueLength: longest value text kept in a difference; longer values are cut.
    public init(settings: CompareSettings = CompareSettings(), maxDifferences: Int = 100, maxValueLength: Int = 200) {
        self.settings = settings
        self.maxDifferences = maxDifferences
        self.maxValueLength = maxValueLength
        self.ignore = settings.ignore.map(PointerPattern.init)
        self.arrayKeys = settings.arrays.sorted { $0.key < $1.key }.map { (PointerPattern($0.key), $0.value) }
    }

    /// Compares the candidate's response with the primary's: the status, the headers listed in
    /// `compare.headers`, then the bodies.
    ///
    /// Bodies must arrive decoded (the comparison worker decodes gzip and deflate): one still
    /// under another `content-encoding` makes the result uncomparable, as does a body that looks
    /// like JSON but does not parse. Differences are not redacted here; ``Redactor`` does that
    /// before storage.
    /// - Returns: the outcome and the differences, at most ``maxDifferences`` of them.
    public func compare(primary: CapturedResponse, candidate: CapturedResponse) -> Comparison {
        var collector = Collector(limit: maxDifferences, maxValueLength: maxValueLength)
        if primary.status != candidate.status {
            collector.add(.status, pointer: "", String(primary.status), String(candidate.status))
        }
        for name in settings.headers {
            let a = primary.header(name)
            let b = candidate.header(name)
            if a != b { collector.add(.header, pointer: name, a, b) }
        }
        for (label, response) in [("primary", primary), ("candidate", candidate)] {
            if let encoding = response.header("content-encoding")?.lowercased(), encoding != "identity" {
                return Comparison(
                    outcome: .uncomparable(
                        "the \(label) body is still \(encoding)-encoded; the comparator takes decoded bodies (the comparison worker decodes gzip and deflate)"
                    ),
                    differences: collector.differences,
                    omitted: collector.omitted
                )
            }
        }
        if let uncomparable = compareBodies(primary, candidate, into: &collector) {
            return Comparison(outcome: .uncomparable(uncomparable), differences: collector.differences, omitted: collector.omitted)
        }
        let outcome: Comparison.Outcome = collector.differences.isEmpty ? .match : .mismatch
        return Comparison(outcome: outcome, differences: collector.differences, omitted: collector.omitted)
    }

    // MARK: - Bodies

    /// Returns a reason when the bodies can't be compared.
    private func compareBodies(_ primary: CapturedResponse, _ candidate: CapturedResponse, into collector: inout Collector) -> String? {
        if primary.body == candidate.body { return nil }
        let looksJSON = [primary, candidate].contains { response in
            (response.header("content-type").map(Self.mentionsJSON) ?? false)
                || response.body.first(where: { ![0x20, 0x0A, 0x0D, 0x09].contains($0) }).map { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[") }
                    ?? false
        }
        if looksJSON {
            // Usually the answers are equal as JSON but not byte for byte; that is settled from
            // the bytes, and only the rest is parsed.
            if JSONQuickEquality.provesEqual(primary.body, candidate.body) { return nil }
            let a: JSONDocument
            let b: JSONDocument
            do {
                a = try JSONDocument.parse(primary.body)
            } catch {
                return "the primary body is not comparable JSON: \(error)"
            }
            do {
                b = try JSONDocument.parse(candidate.body)
            } catch {
                return "the candidate body is not comparable JSON: \(error)"
            }
            var path: [String] = []
            compare(a, b, path: &path, into: &collector)
            return nil
        }
        guard let a = String(validatingUTF8Bytes: primary.body), let b = String(validatingUTF8Bytes: candidate.body) else {
            collector.add(
                .bytes,
                pointer: "",
                "\(primary.body.count) bytes, hash \(ContentHash.hex(of: primary.body))",
                "\(candidate.body.count) bytes, hash \(ContentHash.hex(of: candidate.body))"
            )
            return nil
        }
        let linesA = a.split(separator: "\n", omittingEmptySubsequences: false)
        let linesB = b.split(separator: "\n", omittingEmptySubsequences: false)
        let firstDifferent = zip(linesA, linesB).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(linesA.count, linesB.count)
        collector.add(
            .text,
            pointer: "line \(firstDifferent + 1)",
            firstDifferent < linesA.count ? String(linesA[firstDifferent]) : nil,
            firstDifferent < linesB.count ? String(linesB[firstDifferent]) : nil
        )
        return nil
    }

    /// Whether a content type names JSON (`application/json`, `application/problem+json`, ...),
    /// in any case. Scanned as bytes rather than through Foundation's string search.
    static func mentionsJSON(_ contentType: String) -> Bool {
        let utf8 = Array(contentType.utf8)
        guard utf8.count >= 4 else { return false }
        // OR-ing 0x20 folds case; only the letters j, s, o, n land on these values.
        for start in 0...(utf8.count - 4)
        where utf8[start] | 0x20 == UInt8(ascii: "j") && utf8[start + 1] | 0x20 == UInt8(ascii: "s")
            && utf8[start + 2] | 0x20 == UInt8(ascii: "o") && utf8[start + 3] | 0x20 == UInt8(ascii: "n")
        {
            return true
        }
        return false
    }

    private func isIgnored(_ path: [String]) -> Bool {
        ignore.contains { $0.covers(path) }
    }

    private func compare(_ a: JSONDocument, _ b: JSONDocument, path: inout [String], into collector: inout Collector) {
        // Past the cap the walk goes on, to count what is omitted; values are then not formatted.
        if isIgnored(path) { return }
        switch (a, b) {
        case (.object(let membersA), .object(let membersB)):
            compareMembers(membersA, membersB, path: &path, into: &collector)
        case (.array(let itemsA), .array(let itemsB)):
            if let key = arrayKeys.first(where: { $0.pattern.matches(path) })?.key,
                let keyedA = Self.keyed(itemsA, by: key), let keyedB = Self.keyed(itemsB, by: key)
            {
                compareMembers(keyedA, keyedB, path: &path, into: &collector)
                return
            }
            for index in 0..<max(itemsA.count, itemsB.count) {
                path.append(String(index))
                if index < itemsA.count, index < itemsB.count {
                    compare(itemsA[index], itemsB[index], path: &path, into: &collector)
                } else if !isIgnored(path) {
                    if index < itemsA.count {
                        collector.add(.missing, pointer: PointerPattern.join(path), itemsA[index].text, nil)
                    } else {
                        collector.add(.added, pointer: PointerPattern.join(path), nil, itemsB[index].text)
                    }
                }
                path.removeLast()
            }
        case (.number(let x), .number(let y)):
            if !numbersEqual(x, y) { collector.add(.changed, pointer: PointerPattern.join(path), x, y) }
        case (.string(let x), .string(let y)):
            if x != y { collector.add(.changed, pointer: PointerPattern.join(path), a.text, b.text) }
        case (.bool(let x), .bool(let y)):
            if x != y { collector.add(.changed, pointer: PointerPattern.join(path), a.text, b.text) }
        case (.null, .null):
            break
        case (.number(let x), .string(let y)) where settings.coerceNumericStrings && NumberText.isNumber(y):
            if !numbersEqual(x, y) { collector.add(.changed, pointer: PointerPattern.join(path), a.text, b.text) }
        case (.string(let x), .number(let y)) where settings.coerceNumericStrings && NumberText.isNumber(x):
            if !numbersEqual(x, y) { collector.add(.changed, pointer: PointerPattern.join(path), a.text, b.text) }
        default:
            collector.add(.type, pointer: PointerPattern.join(path), a.text, b.text)
        }
    }

    /// Compares two sets of named members (object members, or array elements by their key):
    /// matching names recurse, the rest are `missing` or `added`.
    private func compareMembers(
        _ membersA: [(key: String, value: JSONDocument)],
        _ membersB: [(key: String, value: JSONDocument)],
        path: inout [String],
        into collector: inout Collector
    ) {
        // Both sides usually list the same keys in the same order: then members pair up by
        // position, with no lookups.
        if membersA.count == membersB.count, zip(membersA, membersB).allSatisfy({ $0.key == $1.key }) {
            for (memberA, memberB) in zip(membersA, membersB) {
                path.append(PointerPattern.escape(memberA.key))
                compare(memberA.value, memberB.value, path: &path, into: &collector)
                path.removeLast()
            }
            return
        }
        // Small objects are searched; hashing every key costs more than a scan of a few.
        let small = membersA.count <= 16 && membersB.count <= 16
        let indexB = small ? [:] : Dictionary(membersB.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        let keysA = small ? [] : Set(membersA.map(\.key))
        for (key, valueA) in membersA {
            path.append(PointerPattern.escape(key))
            if let valueB = small ? membersB.last(where: { $0.key == key })?.value : indexB[key] {
                compare(valueA, valueB, path: &path, into: &collector)
            } else if !isIgnored(path) {
                collector.add(.missing, pointer: PointerPattern.join(path), valueA.text, nil)
            }
            path.removeLast()
        }
        for (key, valueB) in membersB where !(small ? membersA.contains { $0.key == key } : keysA.contains(key)) {
            path.append(PointerPattern.escape(key))
            if !isIgnored(path) { collector.add(.added, pointer: PointerPattern.join(path), nil, valueB.text) }
            path.removeLast()
        }
    }

    /// Elements by their key field, or nil when an element has no usable, unique key (then the
    /// array is compared by index instead).
    private static func keyed(_ items: [JSONDocument], by key: String) -> [(key: String, value: JSONDocument)]? {
        var result: [(key: String, value: JSONDocument)] = []
        var seen = Set<String>()
        for item in items {
            guard case .object(let members) = item, let value = members.last(where: { $0.key == key })?.value else { return nil }
            let text: String
            switch value {
            case .string(let string): text = string
            case .number(let number): text = number
            default: return nil
            }
            guard seen.insert(text).inserted else { return nil }
            result.append((text, item))
        }
        return result
    }

    private func numbersEqual(_ x: String, _ y: String) -> Bool {
        if x == y { return true }
        if let canonicalX = NumberText.canonical(x), let canonicalY = NumberText.canonical(y), canonicalX == canonicalY {
            return true
        }
        guard settings.numericTolerance > 0, let a = Double(x), let b = Double(y), a.isFinite, b.isFinite else { return false }
        return abs(a - b) <= settings.numericTolerance * max(abs(a), abs(b))
    }

    /// Collects differences up to a cap, truncating long values.
    private struct Collector {
        let limit: Int
        let maxValueLength: Int
        var differences: [Difference] = []
        var omitted = 0
        var isFull: Bool { differences.count >= limit }

        mutating func add(
            _ kind: DifferenceKind,
            pointer: @autoclosure () -> String,
            _ primary: @autoclosure () -> String?,
            _ candidate: @autoclosure () -> String?
        ) {
            guard !isFull else {
                omitted += 1
                return
            }
            differences.append(Difference(kind: kind, pointer: pointer(), primary: truncate(primary()), candidate: truncate(candidate())))
        }

        func truncate(_ value: String?) -> String? {
            guard let value, value.count > maxValueLength else { return value }
            return String(value.prefix(maxValueLength)) + "…"
        }
    }
}

/// Exact comparison of JSON number texts: `1.0`, `1` and `10e-1` are the same number, and
/// `1152921504606846977` is not `1152921504606846976` (no trip through `Double`).
enum NumberText {
    static func isNumber(_ text: String) -> Bool {
        (try? JSONDocument.parse(Array(text.utf8)))
            .map { if case .number = $0 { true } else { false } } ?? false
    }

    /// Sign, significant digits and exponent; nil for text that is not a plain JSON number or
    /// whose exponent does not fit.
    static func canonical(_ text: String) -> String? {
        var utf8 = Substring(text)
        var negative = false
        if utf8.first == "-" {
            negative = true
            utf8 = utf8.dropFirst()
        }
        var exponent = 0
        if let e = utf8.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            guard let value = Int(utf8[utf8.index(after: e)...].replacingOccurrences(of: "+", with: "")),
                abs(value) < 1_000_000
            else { return nil }
            exponent = value
            utf8 = utf8[..<e]
        }
        var digits = ""
        if let dot = utf8.firstIndex(of: ".") {
            let fraction = utf8[utf8.index(after: dot)...]
            digits = String(utf8[..<dot]) + fraction
            exponent -= fraction.count
        } else {
            digits = String(utf8)
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else { return nil }
        var trimmed = Substring(digits.drop { $0 == "0" })
        while trimmed.last == "0" {
            trimmed = trimmed.dropLast()
            exponent += 1
        }
        if trimmed.isEmpty { return "0" }
        return (negative ? "-" : "") + trimmed + "e" + String(exponent)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    /// Decodes UTF-8, or nil when the bytes are not valid UTF-8.
    init?(validatingUTF8Bytes bytes: [UInt8]) {
        var scalars = String.UnicodeScalarView()
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self = String(scalars)
    }
}
