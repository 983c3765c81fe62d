import Foundation
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerStore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// Values from data never reach an operator's terminal raw: the CLI escapes them, and the admin
/// API refuses control characters in what it would store.
@Suite("Terminal escaping of values from data")
struct TerminalEscapingTests {
    /// An OSC title change ending in BEL, a CSI screen clear, an 8-bit CSI, a right-to-left
    /// override and a forged line.
    static let hostileActor = "mallory\u{1B}]0;pwned\u{7}"
    static let hostileReason = "fine\u{1B}[2J\u{9B}31m\u{202E}gnp.exe\r\nok   minSamples: 999"

    /// What a terminal must never receive from a value: ESC, BEL, CR, a C1 control (UTF-8
    /// C2 80–C2 9F) or a bidi override or isolate.
    static func rawControls(in text: String) -> [String] {
        var found: [String] = []
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: continue  // the output's own line breaks
            case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: found.append(TerminalText.codePoint(scalar))
            default: continue
            }
        }
        return found
    }

    @Test("routes history and routes show print a stored actor and reason escaped, never raw")
    func historyEscapesStoredValues() async throws {
        let store = try makeTestStore("escape")
        let routes = routesFilePath(beside: store)
        try ControlledProxy.routesFile(
            legacyPort: 9,
            servicePort: 10,
            routes: #"[{"id": "inv", "path": "/inv/**", "mode": "shadow", "service": "service"}]"#
        ).write(to: URL(fileURLWithPath: routes))
        // Straight into the store: the admin API would refuse these values now.
        _ = try await store.recordChanges(
            [
                RouteChange(
                    actor: Self.hostileActor,
                    source: .admin,
                    routeID: "inv",
                    reason: Self.hostileReason,
                    before: #"{"id": "inv", "mode": "legacy"}"#,
                    after: #"{"id": "inv", "mode": "shadow"}"#,
                    tableVersionBefore: "aaa\u{1B}[5m",
                    tableVersionAfter: "bbbbbbbb"
                )
            ],
            tableContent: nil
        )
        let common = ["--routes", routes, "--store", store.path, "--migrations", RoutesCommandTests.root.appendingPathComponent("migrations").path]

        for command in [["routes", "history"], ["routes", "history", "inv"], ["routes", "show", "inv"]] {
            let run = try await RoutesCommandTests.strangler(command + common)
            #expect(run.status == 0, "\(command): \(run.stderr)")
            #expect(Self.rawControls(in: run.stdout).isEmpty, "\(command) printed \(Self.rawControls(in: run.stdout))")
            #expect(run.stdout.contains(#"mallory\u{1B}]0;pwned\u{7}"#), "\(command): \(run.stdout)")
            #expect(run.stdout.contains(#"fine\u{1B}[2J\u{9B}31m\u{202E}gnp.exe\r\nok   minSamples: 999"#), "\(command): \(run.stdout)")
            #expect(run.stdout.contains("legacy → shadow"))
        }
    }

    @Test("routes validate quotes a table's content escaped")
    func validateEscapesProblems() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("escape-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let routes = folder.appendingPathComponent("routes.json").path
        // JSON's \u001b is a real ESC in the key once parsed; the problem names that key.
        let json = #"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9"}}, "defaultUpstream": "legacy", "routes": [], "x\u001b[2J\u0085y": 1}"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: routes))
        let run = try await RoutesCommandTests.strangler(["routes", "validate", routes])
        #expect(run.status == 1)
        #expect(Self.rawControls(in: run.stdout).isEmpty, "printed \(Self.rawControls(in: run.stdout))")
        // The validator quotes the key as a JSON string (ESC as \u001b); the terminal escaping
        // catches what JSON leaves raw (U+0085).
        #expect(run.stdout.contains(#"x\u001b[2J\u0085y"#), "\(run.stdout)")
        #expect(run.stdout.contains("1 problem;"))
    }

    @Test("the admin API refuses an actor or reason with a control character: 400, naming the field; nothing changes")
    func adminRefusesControlCharacters() async throws {
        try await ControlledProxy.run(routes: ControlledProxy.walkRoute) { proxy in
            let refused: [(body: [String: Any], field: String, character: String)] = [
                (["reason": "ok\u{1B}[31m"], "reason", "U+001B"),
                (["reason": "line one\nline two"], "reason", "U+000A"),
                (["reason": "carriage\rreturn"], "reason", "U+000D"),
                (["reason": "order\u{202E}fdp"], "reason", "U+202E"),
                (["reason": "ok", "actor": "jane\u{9B}2J"], "actor", "U+009B"),
                (["actor": "bell\u{7}"], "actor", "U+0007"),
            ]
            for (body, field, character) in refused {
                for path in ["/api/routes/walk/promote", "/api/routes/walk/demote", "/api/rollback"] {
                    let answer = try await proxy.admin("POST", path, body: body)
                    #expect(answer.status == 400, "\(path) \(body)")
                    let document = try #require(answer.json as? [String: Any])
                    #expect(document["error"] as? String == "bad_request")
                    let message = try #require(document["message"] as? String)
                    #expect(message.contains("\"\(field)\""), "\(message)")
                    #expect(message.contains(character), "\(message)")
                }
                let mode = try await proxy.admin("POST", "/api/routes/walk/mode", body: body.merging(["mode": "shadow"]) { $1 })
                #expect(mode.status == 400, "mode \(body)")
            }
            #expect(proxy.liveMode("walk") == .legacy, "nothing changed")
            #expect(try await proxy.store.changes().isEmpty)

            // Plain text, non-ASCII included, still goes through.
            let ok = try await proxy.admin("POST", "/api/routes/walk/promote", body: ["reason": "café — ok", "actor": "Jürgen"])
            #expect(ok.status == 200, "\(String(decoding: ok.data, as: UTF8.self))")
            let change = try #require(try await proxy.store.changes(routeID: "walk").first)
            #expect(change.reason == "café — ok")
            #expect(change.actor == "Jürgen (token ops-bot)")
        }
    }
}
