import Foundation
import StranglerCore
import Testing

@Suite("Route predicates shown: canonical JSON and one line of text")
struct RouteMatchDescriptionTests {
    /// A `match` value as routes.json would have it, read by the validator.
    static func match(_ json: String) throws -> RouteMatch {
        let (match, problems) = RouteMatch.parse(try JSONValue.parse(Data(json.utf8)), at: "routes[0].match")
        #expect(problems.isEmpty, "\(problems)")
        return try #require(match)
    }

    static func json(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Data(text.utf8))
    }

    @Test("the JSON form spells every kind of condition as routes.json does, header names in lower case")
    func canonicalJSON() throws {
        let match = try Self.match(
            #"""
            { "host": "Shop.Example.COM.",
              "headers": { "X-Channel": "web", "X-Debug": { "present": false } },
              "query": { "tenant": ["t-17", "t-42"], "preview": { "present": true } },
              "cookies": { "beta": "1" } }
            """#
        )
        let expected = try Self.json(
            #"""
            { "host": "shop.example.com",
              "headers": { "x-channel": "web", "x-debug": { "present": false } },
              "query": { "tenant": ["t-17", "t-42"], "preview": { "present": true } },
              "cookies": { "beta": "1" } }
            """#
        )
        #expect(match.json == expected)
    }

    @Test("only the keys with conditions appear; a one-value list is written as the value; list order is kept")
    func onlyWhatIsThere() throws {
        #expect(try Self.match(#"{"host": "*.example.com"}"#).json == Self.json(#"{"host": "*.example.com"}"#))
        #expect(try Self.match(#"{"cookies": {"beta": ["1"]}}"#).json == Self.json(#"{"cookies": {"beta": "1"}}"#))
        #expect(try Self.match(#"{"query": {"tenant": ["t-42", "t-17", "t-42"]}}"#).json == Self.json(#"{"query": {"tenant": ["t-42", "t-17"]}}"#))
        #expect(RouteMatch().json == .object([:]), "no predicates: an empty object, which a table refuses")
    }

    @Test("the JSON form reads back as equal predicates, also after a trip through an encoder")
    func roundTrip() throws {
        let samples = [
            #"{"host": "Shop.Example.com", "headers": {"X-Channel": ["web", "app"]}}"#,
            #"{"query": {"tenant": ["t-17", "t-42"], "q": ""}, "cookies": {"beta": {"present": true}}}"#,
            #"{"headers": {"X-Debug": {"present": false}}, "cookies": {"a|b": "x|y · z"}}"#,
            #"{"host": "*.example.com", "query": {"filter[status]": "open"}}"#,
        ]
        for sample in samples {
            let match = try Self.match(sample)
            #expect(RouteMatch(json: match.json) == match, "\(sample)")
            let encoded = try JSONEncoder().encode(match.json)
            #expect(RouteMatch(json: try JSONValue.parse(encoded)) == match, "\(sample)")
        }
        #expect(RouteMatch(json: .object([:])) == nil, "empty predicates are no route's match")
        #expect(RouteMatch(json: try Self.json(#"{"headers": {"X-Channel": 3}}"#)) == nil)
    }

    @Test("the text form: host, headers, query, cookies in that order, names sorted, joined by a middle dot")
    func summary() throws {
        let match = try Self.match(
            #"""
            { "cookies": { "beta": { "present": true } },
              "query": { "tenant": ["t-17", "t-42"] },
              "headers": { "X-Debug": { "present": false }, "X-Channel": "web" },
              "host": "Shop.Example.com" }
            """#
        )
        #expect(
            match.summary == "host shop.example.com · header x-channel: web · header x-debug absent · query tenant: t-17|t-42 · cookie beta present"
        )
        #expect(try Self.match(#"{"host": "*.example.com"}"#).summary == "host *.example.com")
        #expect(RouteMatch().summary == "")
    }

    @Test("values and names that could be read as separators are quoted, with quotes and backslashes escaped")
    func summaryQuotes() throws {
        let match = try Self.match(
            #"""
            { "query": { "q": ["a b", "x|y", "", "plain-1.0"], "filter[status]": "open" },
              "cookies": { "c|d": "say \"hi\" \\ bye", "e": "f · g" } }
            """#
        )
        #expect(
            match.summary
                == #"query filter[status]: open · query q: "a b"|"x|y"|""|plain-1.0 · cookie "c|d": "say \"hi\" \\ bye" · cookie e: "f · g""#
        )
    }

    @Test("control characters stay in the text as they are, for the terminal printer to spell out")
    func summaryKeepsControlsForTheTerminal() throws {
        let match = try Self.match(#"{"headers": {"X-Channel": "web\u001b[31m"}}"#)
        #expect(match.summary == "header x-channel: \"web\u{1B}[31m\"")
        #expect(TerminalText.escape(match.summary) == #"header x-channel: "web\u{1B}[31m""#)
    }
}
