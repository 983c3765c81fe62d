import Foundation
import StranglerCore
import Testing

/// Route tables written to hurt: millions of problems, values that would inject headers or
/// drive a terminal, keys that JSON readers disagree on. Each is refused with its JSON path, and
/// what the refusal says stays small.
@Suite("Hostile route tables")
struct HostileTableTests {
    static let upstreams =
        #""upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}, "svc": {"url": "http://127.0.0.1:9101"}}, "defaultUpstream": "legacy""#

    func error(_ text: String) -> RouteTableError? {
        error(Data(text.utf8))
    }

    func error(_ data: Data) -> RouteTableError? {
        do {
            _ = try RouteTable.parse(data)
            return nil
        } catch {
            return error
        }
    }

    func table(routes: String, upstreams: String = HostileTableTests.upstreams) -> String {
        "{\(upstreams), \"routes\": \(routes)}"
    }

    func dupRoutes(_ count: Int) -> String {
        "[" + (0..<count).map { #"{"id": "r\#($0)", "methods": ["GET"], "path": "/dup/{x\#($0)}", "mode": "legacy"}"# }.joined(separator: ",") + "]"
    }

    @Test("2,000 copies of one route: each clash is reported once, and only the first 100 are kept")
    func pairwiseAmbiguous() throws {
        let found = try #require(error(table(routes: dupRoutes(2000))))
        // Every route after the first clashes with the first: 1,999 problems, not the
        // 1,999,000 pairs.
        #expect(found.totalProblems == 1999)
        #expect(found.problems.count == RouteTableError.reportedLimit)
        #expect(found.moreProblems == 1899)
        #expect(found.problems[0].path == "routes[1].path")
        #expect(found.problems[0].message.contains("ambiguous with routes[0]"))
        #expect(found.description.hasSuffix("… and 1899 more problems"))
        #expect(found.description.utf8.count < 32 * 1024)
    }

    @Test("a clash names the earliest route it clashes with, by method")
    func clashByMethod() throws {
        let routes = """
            [{"id": "a", "methods": ["POST"], "path": "/o/{id}", "mode": "legacy"},
             {"id": "b", "methods": ["GET"], "path": "/o/{x}", "mode": "legacy"},
             {"id": "c", "methods": ["PUT", "GET"], "path": "/o/{y}", "mode": "legacy"},
             {"id": "d", "path": "/o/{z}", "mode": "legacy"},
             {"id": "e", "methods": ["DELETE"], "path": "/o/{w}", "mode": "legacy"}]
            """
        let found = try #require(error(table(routes: routes)))
        #expect(found.problems.map(\.path) == ["routes[2].path", "routes[3].path", "routes[4].path"])
        #expect(found.problems[0].message.contains("routes[1]") && found.problems[0].message.contains("for GET"))
        #expect(found.problems[1].message.contains("routes[0]") && found.problems[1].message.contains("for POST"))
        // DELETE clashes only with the route that takes every method.
        #expect(found.problems[2].message.contains("routes[3]") && found.problems[2].message.contains("for DELETE"))
    }

    @Test("a duplicate JSON key is refused at its path: readers disagree on which one counts")
    func duplicateKeys() throws {
        let routes = #"[{"id": "a", "path": "/a", "mode": "shadow", "mode": "legacy", "service": "svc"}]"#
        let found = try #require(error(table(routes: routes)))
        #expect(found.problems.contains { $0.path == "routes[0].mode" && $0.message.contains("duplicate key \"mode\"") })

        let top = #"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}}, "defaultUpstream": "legacy", "routes": [], "routes": []}"#
        #expect(error(top)?.problems.map(\.path) == ["routes"])

        let inUpstream =
            #"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9000", "url": "http://10.0.0.1:1"}}, "defaultUpstream": "legacy", "routes": []}"#
        #expect(error(inUpstream)?.problems.map(\.path) == ["upstreams.legacy.url"])
    }

    @Test("JSON that other readers take leniently is refused with a line and column")
    func lenientSyntax() throws {
        let cases: [(String, String)] = [
            (#"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"},}, "defaultUpstream": "legacy", "routes": []}"#, "trailing comma"),
            (#"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}}, "defaultUpstream": "legacy", "routes": [1,]}"#, "trailing comma"),
            ("{\"upstreams\": {}, // note\n \"routes\": []}", "no comments"),
            (#"{'upstreams': {}}"#, "double quotes"),
        ]
        for (text, hint) in cases {
            let found = try #require(error(text), "\(text)")
            #expect(found.problems.count == 1)
            #expect(found.problems[0].path == "$")
            #expect(found.problems[0].message.hasPrefix("not valid JSON:"))
            #expect(found.problems[0].message.contains("line 1, column") || found.problems[0].message.contains("line 2, column"))
            #expect(found.problems[0].message.contains(hint), "\(found.problems[0].message)")
        }
        let multiline = "{\n  \"routes\": [\n    {\"id\": \"a\",}\n  ]\n}"
        #expect(error(multiline)?.problems[0].message.contains("at line 3, column 16") == true)
    }

    @Test("empty, whitespace, a byte-order mark, bad UTF-8 and deep nesting are refused at $")
    func unreadable() throws {
        #expect(error(Data())?.problems[0].message.contains("the file is empty") == true)
        #expect(error(" \n\t ")?.problems[0].message.contains("the file is empty") == true)
        #expect(error(Data([0xEF, 0xBB, 0xBF]) + Data("{}".utf8))?.problems[0].message.contains("byte-order mark") == true)
        var bad = Data(#"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}}, "defaultUpstream": "le"#.utf8)
        bad += Data([0xFF, 0xFE])
        bad += Data(#"gacy", "routes": []}"#.utf8)
        let utf8 = try #require(error(bad))
        #expect(utf8.problems[0].path == "$" && utf8.problems[0].message.contains("UTF-8"))
        let outside = try #require(error(Data([0x7B, 0xC3, 0xA9, 0x7D])))
        #expect(outside.problems[0].message.contains("not ASCII"))
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let nesting = try #require(error(table(routes: #"[{"id": "a", "path": "/a", "mode": "legacy", "description": \#(deep)}]"#)))
        #expect(nesting.problems[0].path == "$" && nesting.problems[0].message.contains("nesting deeper than 64"))
    }

    @Test("an upstream URL that would inject into the request line is refused")
    func urlInjection() throws {
        let cases: [(url: String, says: String)] = [
            ("http://127.0.0.1:9000/a\r\nX-Injected: 1", "carriage return"),
            ("http://127.0.0.1:9000/a\nX-Injected: 1", "line feed"),
            ("http://127.0.0.1:9000/a b", "space"),
            ("http://127.0.0.1:9000/a\tb", "tab"),
            ("http://127.0.0.1:9000/a\u{1B}[31m", "control character"),
            ("http://127.0.0.1:9000/caf\u{E9}", "non-ASCII"),
            ("http://127.0.0.1:9000/a\"b", "percent-encoded (%22)"),
            ("http://127.0.0.1:9000/a%zz", "two hex digits"),
            ("http://127.0.0.1 :9000", "space"),
            ("http://exa mple.com", "space"),
            ("http://exa<mple.com", "may use only letters"),
            ("http://127.0.0.1:+80", "port"),
            ("http://127.0.0.1:", "port"),
            ("http://127.0.0.1:65536", "port"),
            ("http://[::1", "closing"),
            ("http://[::1]x", "only a port"),
            ("http://[zz]:80", "not an IPv6 address"),
            ("http://[::1]:0", "port"),
            ("http://u:p@127.0.0.1:9000", "credentials"),
            ("http://127.0.0.1:9000?x=1", "query"),
            ("http://127.0.0.1:9000/a#f", "fragment"),
        ]
        for (url, says) in cases {
            let upstreams = "\"upstreams\": {\"legacy\": {\"url\": \(JSONDocument.quoted(url))}}, \"defaultUpstream\": \"legacy\""
            let found = try #require(error(table(routes: "[]", upstreams: upstreams)), "\(url)")
            #expect(found.problems.map(\.path) == ["upstreams.legacy.url"], "\(url)")
            #expect(found.problems.first?.message.contains(says) == true, "\(url): \(found.problems.first?.message ?? "")")
            // The message shows the URL escaped, never raw control characters.
            #expect(found.description.unicodeScalars.allSatisfy { $0.value >= 0x20 || $0 == "\n" }, "\(url)")
        }
        for url in ["http://[::1]:9000/base", "http://svc_1.internal:8080/a/b%20c/~x", "http://127.0.0.1"] {
            let upstreams = "\"upstreams\": {\"legacy\": {\"url\": \(JSONDocument.quoted(url))}}, \"defaultUpstream\": \"legacy\""
            #expect(error(table(routes: "[]", upstreams: upstreams)) == nil, "\(url)")
        }
    }

    @Test("ids and names are at most 256 bytes; a 10 MB id is refused without being repeated")
    func overlongValues() throws {
        let long = String(repeating: "a", count: 10 << 20)
        let found = try #require(error(table(routes: #"[{"id": "\#(long)", "path": "/a", "mode": "legacy"}]"#)))
        #expect(found.problems.map(\.path) == ["routes[0].id"])
        #expect(found.problems[0].message.contains("at most 256"))
        #expect(found.description.utf8.count < 1024)

        let at256 = String(repeating: "b", count: 256)
        #expect(error(table(routes: #"[{"id": "\#(at256)", "path": "/a", "mode": "legacy"}]"#)) == nil)

        let description = String(repeating: "d", count: 5000)
        let described = try #require(error(table(routes: #"[{"id": "a", "description": "\#(description)", "path": "/a", "mode": "legacy"}]"#)))
        #expect(described.problems.map(\.path) == ["routes[0].description"])

        let name = String(repeating: "n", count: 300)
        let upstreams = #""upstreams": {"\#(name)": {"url": "http://127.0.0.1:9000"}}, "defaultUpstream": "legacy""#
        let named = try #require(error(table(routes: "[]", upstreams: upstreams)))
        #expect(named.problems.contains { $0.message.contains("at most 256") })
        #expect(named.description.utf8.count < 2048)
    }

    @Test("control characters in keys, ids and paths are escaped in every message")
    func escapedMessages() throws {
        let routes = #"[{"id": "a\u001b[2J", "path": "/a\u0007b", "mode": "le\u009bgacy", "x\u001b]0;pwn\u0007": 1}]"#
        let found = try #require(error(table(routes: routes)))
        #expect(Set(found.problems.map(\.path)).isSuperset(of: ["routes[0].id", "routes[0].path", "routes[0].mode"]))
        #expect(found.problems.contains { $0.path.hasPrefix("routes[0][") && $0.message.contains("unknown key") })
        for problem in found.problems {
            #expect(!problem.description.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x1B }, "\(problem)")
        }
        #expect(found.problems.first { $0.path == "routes[0].path" }?.message.contains("control character") == true)
    }

    @Test("the cap keeps the first problems in document order and counts the rest")
    func capCounts() {
        let many = RouteTableError(problems: (0..<250).map { .init(path: "routes[\($0)]", message: "x") })
        #expect(many.problems.count == 100)
        #expect(many.moreProblems == 150)
        #expect(many.totalProblems == 250)
        #expect(many.problems.last?.path == "routes[99]")
        #expect(many.moreProblemsLine == "… and 150 more problems")
        #expect(RouteTableError(problems: [.init(path: "$", message: "x")]).moreProblemsLine == nil)
    }

    @Test("an infinite number, a key of one character with a million combining marks, and a route listing 1,000 methods are refused, briefly")
    func degenerateValues() throws {
        let infinite = try #require(error(table(routes: #"[{"id": "a", "path": "/a", "mode": "legacy", "gate": {"maxLatencyRatio": 1e400}}]"#)))
        #expect(infinite.problems.map(\.path) == ["routes[0].gate.maxLatencyRatio"])
        #expect(infinite.problems[0].message.contains("out of range"))

        let heavy = "a" + String(repeating: "\u{301}", count: 1_000_000)
        let key = try #require(error(table(routes: #"[{"id": "a", "path": "/a", "mode": "legacy", "\#(heavy)": 1}]"#)))
        #expect(key.problems.count == 1)
        #expect(key.description.utf8.count < 1024)

        let methods = "[" + (0..<1000).map { "\"M\($0)\"" }.joined(separator: ",") + "]"
        let many = try #require(error(table(routes: #"[{"id": "a", "methods": \#(methods), "path": "/a", "mode": "legacy"}]"#)))
        #expect(many.problems.map(\.path) == ["routes[0].methods"])
        #expect(many.problems[0].message.contains("at most 32"))
    }

    @Test("an IPv6 upstream's authority is bracketed, so a Host header made from it names the right port")
    func ipv6Authority() throws {
        let upstreams = #""upstreams": {"legacy": {"url": "http://[::1]:9000"}, "v4": {"url": "http://127.0.0.1:9001"}}, "defaultUpstream": "legacy""#
        let parsed = try RouteTable.parse(Data(table(routes: "[]", upstreams: upstreams).utf8))
        #expect(parsed.upstreams["legacy"]?.authority == "[::1]:9000")
        #expect(parsed.upstreams["v4"]?.authority == "127.0.0.1:9001")
    }
}
