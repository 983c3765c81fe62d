import Foundation
import Testing

@testable import StranglerCore

@Suite("Response comparator")
struct ResponseComparatorTests {
    static func json(
        _ text: String,
        status: Int = 200,
        headers: [(name: String, value: String)] = [("content-type", "application/json")]
    )
        -> CapturedResponse
    {
        CapturedResponse(status: status, headers: headers, body: Array(text.utf8))
    }

    static func compare(_ a: String, _ b: String, _ configure: (inout CompareSettings) -> Void = { _ in }) -> Comparison {
        var settings = CompareSettings()
        configure(&settings)
        return ResponseComparator(settings: settings).compare(primary: json(a), candidate: json(b))
    }

    @Test("equal documents match regardless of member order and whitespace")
    func match() {
        let result = Self.compare(#"{"a": 1, "b": [1, 2], "c": {"d": null}}"#, #"{"c":{"d":null},"b":[1,2],"a":1}"#)
        #expect(result.outcome == .match)
        #expect(result.differences.isEmpty)
    }

    @Test("objects pair up members by position, by a scan when small and by a lookup when large, with the same result")
    func memberPairing() {
        // 3 members (a scan) and 40 (a lookup), each in the same order, reversed, and with one
        // member changed, one missing and one added.
        for count in [3, 40] {
            let keys = (0..<count).map { "k\($0)" }
            func object(_ keys: [String], _ value: (String) -> String = { "\"\($0)\"" }) -> String {
                "{" + keys.map { "\"\($0)\": \(value($0))" }.joined(separator: ", ") + "}"
            }
            let original = object(keys)
            #expect(Self.compare(original, object(keys)).outcome == .match, "\(count) in order")
            #expect(Self.compare(original, object(keys.reversed())).outcome == .match, "\(count) reversed")
            let edited = object(Array(keys.dropFirst().reversed()) + ["extra"]) { $0 == "k1" ? "2" : "\"\($0)\"" }
            let result = Self.compare(original, edited)
            #expect(
                Set(result.differences) == [
                    Difference(kind: .type, pointer: "/k1", primary: "\"k1\"", candidate: "2"),
                    Difference(kind: .missing, pointer: "/k0", primary: "\"k0\"", candidate: nil),
                    Difference(kind: .added, pointer: "/extra", primary: nil, candidate: "\"extra\""),
                ],
                "\(count) edited"
            )
        }
    }

    @Test("a repeated key keeps its last value at its first place, in small and large objects; strings decode escapes and UTF-8")
    func parsing() throws {
        for filler in [0, 30] {
            let members = (0..<filler).map { "\"f\($0)\": 0" } + [#""dup": 1"#, #""mid": "é\u00e9\"\n""#, #""dup": 2"#]
            let document = try JSONDocument.parse(Array(("{" + members.joined(separator: ", ") + "}").utf8))
            guard case .object(let parsed) = document else {
                Issue.record("not an object")
                continue
            }
            #expect(parsed.map(\.key) == (0..<filler).map { "f\($0)" } + ["dup", "mid"])
            #expect(parsed[filler].value == .number("2"))
            #expect(parsed[filler + 1].value == .string("éé\"\n"))
        }
        #expect(throws: JSONDocument.ParseError.self) { try JSONDocument.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test("a body is taken for JSON by a content type naming json in any case")
    func contentTypes() {
        #expect(ResponseComparator.mentionsJSON("application/json"))
        #expect(ResponseComparator.mentionsJSON("application/problem+JSON; charset=utf-8"))
        #expect(!ResponseComparator.mentionsJSON("text/plain"))
        #expect(!ResponseComparator.mentionsJSON("jso"))
        #expect(!ResponseComparator.mentionsJSON("application/j-son"))
    }

    @Test("status is exact; only listed headers count, names case-insensitive")
    func statusAndHeaders() {
        var settings = CompareSettings()
        settings.headers = ["content-type"]
        let comparator = ResponseComparator(settings: settings)
        let a = CapturedResponse(status: 200, headers: [("Content-Type", "application/json"), ("Server", "legacy")], body: Array("{}".utf8))
        let b = CapturedResponse(status: 404, headers: [("content-type", "text/plain"), ("Server", "new")], body: Array("{}".utf8))
        let result = comparator.compare(primary: a, candidate: b)
        #expect(result.outcome == .mismatch)
        #expect(
            result.differences == [
                Difference(kind: .status, pointer: "", primary: "200", candidate: "404"),
                Difference(kind: .header, pointer: "content-type", primary: "application/json", candidate: "text/plain"),
            ]
        )
    }

    @Test("changed, missing, added and type differences carry RFC 6901 pointers and both values")
    func kinds() {
        let result = Self.compare(
            #"{"name": "shoe", "qty": 2, "gone": true, "a/b": {"~x": 1}, "tags": ["x", "y"], "price": "12.50"}"#,
            #"{"name": "boot", "qty": 2, "new": [1], "a/b": {"~x": 2}, "tags": ["x"], "price": 12.5}"#
        )
        #expect(
            Set(result.differences) == [
                Difference(kind: .changed, pointer: "/name", primary: "\"shoe\"", candidate: "\"boot\""),
                Difference(kind: .missing, pointer: "/gone", primary: "true", candidate: nil),
                Difference(kind: .changed, pointer: "/a~1b/~0x", primary: "1", candidate: "2"),
                Difference(kind: .missing, pointer: "/tags/1", primary: "\"y\"", candidate: nil),
                Difference(kind: .type, pointer: "/price", primary: "\"12.50\"", candidate: "12.5"),
                Difference(kind: .added, pointer: "/new", primary: nil, candidate: "[1]"),
            ]
        )
    }

    @Test("ignore takes pointers with * for one segment and covers the subtree")
    func ignore() {
        let result = Self.compare(
            #"{"updatedAt": {"ts": 1}, "locations": [{"lastCount": "a", "n": 1}, {"lastCount": "b", "n": 2}], "x": 1}"#,
            #"{"updatedAt": {"ts": 2}, "locations": [{"lastCount": "c", "n": 1}, {"lastCount": "d", "n": 3}], "x": 1}"#
        ) { $0.ignore = ["/updatedAt", "/locations/*/lastCount"] }
        #expect(result.differences == [Difference(kind: .changed, pointer: "/locations/1/n", primary: "2", candidate: "3")])
    }

    @Test("arrays keyed by a field compare as sets; pointers name the key")
    func keyedArrays() {
        let a =
            #"{"locations": [{"location": "STORE-NYC", "onHand": 38}, {"location": "DC-EAST", "onHand": 4}, {"location": "DC-WEST", "onHand": 35}]}"#
        let b =
            #"{"locations": [{"location": "DC-EAST", "onHand": 4}, {"location": "DC-WEST", "onHand": 30}, {"location": "DC-NORTH", "onHand": 1}]}"#
        let keyed = Self.compare(a, b) { $0.arrays = ["/locations": "location"] }
        #expect(
            Set(keyed.differences) == [
                Difference(kind: .missing, pointer: "/locations/STORE-NYC", primary: #"{"location":"STORE-NYC","onHand":38}"#, candidate: nil),
                Difference(kind: .changed, pointer: "/locations/DC-WEST/onHand", primary: "35", candidate: "30"),
                Difference(kind: .added, pointer: "/locations/DC-NORTH", primary: nil, candidate: #"{"location":"DC-NORTH","onHand":1}"#),
            ]
        )
        // Without the rule the same arrays compare by index and differ everywhere.
        #expect(Self.compare(a, b).differences.count > 3)
    }

    @Test("numbers: exact by value, relative tolerance when set, no precision lost on big integers")
    func numbers() {
        #expect(Self.compare("[1.0, 10e-1, 0.50, -0]", "[1, 1, 0.5, 0]").outcome == .match)
        #expect(Self.compare("[1152921504606846977]", "[1152921504606846976]").differences.count == 1)
        #expect(Self.compare("[100]", "[100.4]") { $0.numericTolerance = 0.005 }.outcome == .match)
        #expect(Self.compare("[100]", "[101]") { $0.numericTolerance = 0.005 }.differences.count == 1)
        #expect(Self.compare("[1e999999]", "[1e999999]").outcome == .match)
        #expect(Self.compare("[1e400]", "[2e400]").differences.count == 1)
    }

    @Test("coerceNumericStrings makes \"12.50\" equal 12.5, and only then")
    func coercion() {
        #expect(Self.compare(#"{"total": "12.50"}"#, #"{"total": 12.5}"#).differences.map(\.kind) == [.type])
        #expect(Self.compare(#"{"total": "12.50"}"#, #"{"total": 12.5}"#) { $0.coerceNumericStrings = true }.outcome == .match)
        #expect(Self.compare(#"{"total": "12.50"}"#, #"{"total": 12.6}"#) { $0.coerceNumericStrings = true }.differences.map(\.kind) == [.changed])
        #expect(Self.compare(#"{"total": "twelve"}"#, #"{"total": 12}"#) { $0.coerceNumericStrings = true }.differences.map(\.kind) == [.type])
    }

    @Test("non-JSON bodies compare as text (first differing line) or bytes (hash)")
    func textAndBytes() {
        let comparator = ResponseComparator()
        let text = comparator.compare(
            primary: CapturedResponse(status: 200, headers: [("content-type", "text/plain")], body: Array("a\nb\nc".utf8)),
            candidate: CapturedResponse(status: 200, headers: [("content-type", "text/plain")], body: Array("a\nB\nc".utf8))
        )
        #expect(text.differences == [Difference(kind: .text, pointer: "line 2", primary: "b", candidate: "B")])
        let bytes = comparator.compare(
            primary: CapturedResponse(status: 200, body: [0xFF, 0xFE, 0x00]),
            candidate: CapturedResponse(status: 200, body: [0xFF, 0xFE, 0x01])
        )
        #expect(bytes.differences.map(\.kind) == [.bytes])
    }

    @Test("hostile JSON is uncomparable with a reason, never a crash")
    func hostile() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let deepResult = Self.compare(deep, "[]")
        guard case .uncomparable(let reason) = deepResult.outcome else {
            Issue.record("deep nesting was compared: \(deepResult.outcome)")
            return
        }
        #expect(reason.contains("nesting deeper than 256"))

        let invalidUTF8 = ResponseComparator().compare(
            primary: CapturedResponse(
                status: 200,
                headers: [("content-type", "application/json")],
                body: [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D]
            ),
            candidate: Self.json(#"{"a": "x"}"#)
        )
        guard case .uncomparable(let utf8Reason) = invalidUTF8.outcome else {
            Issue.record("invalid UTF-8 was compared")
            return
        }
        #expect(utf8Reason.contains("invalid UTF-8"))

        for broken in [#"{"a": }"#, #"{"a": 1"#, "[01]", #"{"a": "\ud800"}"#, "[1,]", "nul"] {
            if case .uncomparable = Self.compare(broken, "{}").outcome {} else { Issue.record("\(broken) was compared") }
        }
        if case .uncomparable(let reason) = ResponseComparator().compare(
            primary: CapturedResponse(status: 200, headers: [("content-encoding", "gzip")], body: [1, 2]),
            candidate: Self.json("{}")
        ).outcome {
            #expect(reason.contains("gzip"))
        } else {
            Issue.record("a gzip body was compared as if plain")
        }
    }

    @Test("a large document with one change yields exactly that difference; the cap counts the rest")
    func largeDocuments() {
        let items = (0..<5_000).map { #"{"id": \#($0), "name": "item \#($0)", "tags": ["a", "b"], "nested": {"deep": {"v": \#($0)}}}"# }
        var changed = items
        changed[4_321] = #"{"id": 4321, "name": "item 4321", "tags": ["a", "b"], "nested": {"deep": {"v": -1}}}"#
        let one = Self.compare("[" + items.joined(separator: ",") + "]", "[" + changed.joined(separator: ",") + "]")
        #expect(one.differences == [Difference(kind: .changed, pointer: "/4321/nested/deep/v", primary: "4321", candidate: "-1")])

        let many = Self.compare(
            "[" + (0..<500).map(String.init).joined(separator: ",") + "]",
            "[" + (0..<500).map { String($0 + 1) }.joined(separator: ",") + "]"
        )
        #expect(many.differences.count == 100)
        #expect(many.omitted == 400)
    }

    @Test("the demo's legacy and modern inventory answers differ at exactly the expected pointers under routes.json's rules")
    func demoPair() throws {
        let legacy =
            #"{"locations":[{"lastCount":"20261117 11:06:40","location":"STORE-SEA","onHand":44,"reserved":4},{"lastCount":"20261107 11:06:40","location":"DC-EAST","onHand":4,"reserved":0}],"productName":"Trail Runner Shoe","sku":"SKU-1001","sysFlags":"0x00","totalOnHand":48,"totalReserved":4,"updatedAt":"20261119 01:20:40"}"#
        let modern =
            #"{"available":0,"locations":[{"lastCount":"2026-11-07T11:06:40Z","location":"DC-EAST","onHand":4,"reserved":0},{"lastCount":"2026-11-17T11:06:40Z","location":"STORE-SEA","onHand":44,"reserved":4}],"productName":"Trail Runner Shoe","sku":"SKU-1001","totalOnHand":4,"totalReserved":4,"updatedAt":"2026-11-19T01:20:40Z"}"#
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes.json")
        let table = try RouteTable.parse(try Data(contentsOf: url))
        let settings = try #require(table.routes.first { $0.id == "inventory-read" }?.compare)
        let result = ResponseComparator(settings: settings).compare(primary: Self.json(legacy), candidate: Self.json(modern))
        #expect(Set(result.differences.map(\.pointer)) == ["/available", "/sysFlags", "/totalOnHand"])
        #expect(
            result.differences.first { $0.pointer == "/totalOnHand" }
                == Difference(kind: .changed, pointer: "/totalOnHand", primary: "48", candidate: "4")
        )
    }

    @Test("long values are truncated")
    func truncation() {
        let long = String(repeating: "x", count: 1_000)
        let result = ResponseComparator(maxValueLength: 50).compare(primary: Self.json(#"{"a": "\#(long)"}"#), candidate: Self.json(#"{"a": "y"}"#))
        #expect(result.differences.first?.primary?.count == 51)
    }
}
