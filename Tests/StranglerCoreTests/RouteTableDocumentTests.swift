import Foundation
import StranglerCore
import Testing

@Suite("Route table document")
struct RouteTableDocumentTests {
    static let repositoryTable = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes.json")

    static let small = Data(
        """
        {
          "upstreams": {
            "legacy": { "url": "http://127.0.0.1:9000" },
            "svc": { "url": "http://127.0.0.1:9101", "timeoutMs": 2000 }
          },
          "defaultUpstream": "legacy",
          "routes": [
            {
              "id": "a",
              "methods": ["GET"],
              "path": "/a/{id}",
              "mode": "legacy",
              "service": "svc",
              "shadow": { "sampleRate": 1.0 },
              "gate": { "minSamples": 10, "maxMismatchRate": 0.001 }
            },
            {
              "id": "b",
              "path": "/b",
              "mode": "legacy"
            }
          ]
        }

        """.utf8
    )

    @Test("the repository's routes.json is already in the canonical layout, so edits diff by line")
    func repositoryIsCanonical() throws {
        let data = try Data(contentsOf: Self.repositoryTable)
        let document = try RouteTableDocument(data: data)
        #expect(String(decoding: document.formatted, as: UTF8.self) == String(decoding: data, as: UTF8.self))
    }

    @Test("setting a mode changes exactly that line; numbers keep their text")
    func setModeIsOneLine() throws {
        var document = try RouteTableDocument(data: Self.small)
        #expect(document.formatted == Self.small)
        try document.setMode(.shadow, route: "a")
        let before = String(decoding: Self.small, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let after = String(decoding: document.formatted, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(before.count == after.count)
        let changed = zip(before, after).filter { $0 != $1 }
        #expect(changed.count == 1)
        #expect(changed.first?.1 == #"      "mode": "shadow","#)
        #expect(after.contains(#"      "shadow": { "sampleRate": 1.0 },"#))
        #expect(document.table.routes.first { $0.id == "a" }?.mode == .shadow)
    }

    @Test("entering canary adds a canary object where the schema puts it")
    func canaryInsertedInSchemaOrder() throws {
        var document = try RouteTableDocument(data: Self.small)
        try document.setMode(.canary, percent: 12.5, route: "a")
        let text = String(decoding: document.formatted, as: UTF8.self)
        #expect(text.contains(#""shadow": { "sampleRate": 1.0 },\#n      "canary": { "percent": 12.5 },\#n      "gate""#))
        #expect(document.table.routes[0].canary?.percent == 12.5)
        try document.setMode(.canary, route: "a")
        #expect(document.table.routes[0].canary?.percent == 12.5, "an existing percent stays")
    }

    @Test("an edit that would not validate throws, names the problem, and leaves the document as it was")
    func invalidEditRefused() throws {
        var document = try RouteTableDocument(data: Self.small)
        #expect {
            try document.setMode(.service, route: "b")
        } throws: { error in
            "\(error)".contains("routes[1].service") && "\(error)".contains("needs a \"service\" upstream")
        }
        #expect {
            try document.setMode(.shadow, route: "nope")
        } throws: { error in
            "\(error)".contains("no route with id \"nope\"; known: a, b")
        }
        #expect(document.formatted == Self.small)
    }

    @Test("long nested values break over lines; short ones stay on one")
    func layout() throws {
        let ignores = (0..<12).map { "\"/field\($0)/with/a/long/name\"" }.joined(separator: ", ")
        let data = Data(
            """
            {"upstreams":{"legacy":{"url":"http://127.0.0.1:9000"}},"defaultUpstream":"legacy","routes":[{"id":"x","path":"/x","mode":"legacy","compare":{"ignore":[\(ignores)],"headers":["content-type"]}}]}
            """.utf8
        )
        let text = String(decoding: try RouteTableDocument(data: data).formatted, as: UTF8.self)
        #expect(text.contains("      \"compare\": {\n        \"ignore\": [\n          \"/field0/with/a/long/name\",\n"))
        #expect(text.contains(#"        "headers": ["content-type"]"#))
        #expect(try RouteTableDocument(data: Data(text.utf8)).formatted == Data(text.utf8), "the layout is stable")
    }
}

@Suite("Promotion gate")
struct PromotionGateTests {
    @Test("a gate holds only when every check passes, and says which failed with figures")
    func verdict() {
        let gate = GateSettings(minSamples: 500, maxMismatchRate: 0.001, maxLatencyRatio: 1.5)
        var evidence = RouteEvidence(samples: 412, mismatches: 1, legacyP99: 10, serviceP99: 12)
        var verdict = PromotionGate.evaluate(gate, evidence: evidence)
        #expect(!verdict.holds)
        #expect(verdict.checks.map(\.name) == ["minSamples", "maxMismatchRate", "statusMismatches", "maxLatencyRatio"])
        #expect(verdict.lines[0] == "FAIL minSamples: 412 (gate ≥ 500)")
        #expect(verdict.lines[1] == "FAIL maxMismatchRate: 0.24% (1 of 412, noise and accepted excluded) (gate ≤ 0.10%)")
        #expect(verdict.lines[3].hasPrefix("ok   maxLatencyRatio: 1.20×"))

        evidence = RouteEvidence(samples: 5000, mismatches: 2, legacyP99: 10, serviceP99: 12)
        verdict = PromotionGate.evaluate(gate, evidence: evidence)
        #expect(verdict.holds)

        evidence.statusMismatches = 1
        #expect(!PromotionGate.evaluate(gate, evidence: evidence).holds, "a status mismatch always blocks")
        evidence.statusMismatches = 0
        evidence.serviceP99 = 16
        #expect(!PromotionGate.evaluate(gate, evidence: evidence).holds)
    }

    @Test("a route without a gate is held to the defaults, not waved through")
    func defaults() {
        let verdict = PromotionGate.evaluate(nil, evidence: RouteEvidence())
        #expect(!verdict.holds)
        #expect(verdict.checks.first?.limit == "≥ 100")
        #expect(PromotionGate.evaluate(nil, evidence: RouteEvidence(samples: 100)).holds)
    }

    @Test("promotion steps follow the lifecycle")
    func steps() {
        #expect(RouteMode.legacy.promoted == .shadow)
        #expect(RouteMode.canary.promoted == .service)
        #expect(RouteMode.retired.promoted == nil)
        #expect(RouteMode.legacy.demoted == nil)
        #expect(RouteMode.retired.demoted == .service)
        #expect(RouteMode.shadow.promotionNeedsGate && RouteMode.canary.promotionNeedsGate && !RouteMode.legacy.promotionNeedsGate)
    }
}

@Suite("Canary split")
struct CanarySplitTests {
    @Test("buckets spread evenly and a percent takes its share, with the same key always in the same bucket")
    func spread() {
        for percent in [1.0, 10, 33.3, 50, 90] {
            let served = (0..<20_000).filter { CanarySplit.servesService(bucket: CanarySplit.bucket(of: "order-\($0)".utf8), percent: percent) }.count
            #expect(abs(Double(served) / 200 - percent) < 1.5, "\(percent)% took \(Double(served) / 200)%")
        }
        #expect(CanarySplit.bucket(of: "ORD-1".utf8) == CanarySplit.bucket(of: "ORD-1".utf8))
        #expect(!CanarySplit.servesService(bucket: 0, percent: 0))
        #expect(CanarySplit.servesService(bucket: 9_999, percent: 100))
    }

    @Test("a path parameter is read from the raw path, ignoring the query")
    func parameter() throws {
        let template = try PathTemplate.parse("/orders/{id}/items/{line}").get()
        #expect(CanarySplit.parameter("id", of: template, uri: "/orders/ORD%201/items/3?x=1") == "ORD%201")
        #expect(CanarySplit.parameter("line", of: template, uri: "/orders/ORD-1/items/3?x=1") == "3")
        #expect(CanarySplit.parameter("nope", of: template, uri: "/orders/ORD-1/items/3") == nil)
    }
}
