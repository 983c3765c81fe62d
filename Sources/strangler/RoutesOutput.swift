import Foundation
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy
import StranglerReport

/// How `strangler routes` prints its documents: aligned plain text.
///
/// The documents may come from a remote admin API, and their ids, actors and reasons from whoever
/// held a token, so every value is escaped for the terminal (``TerminalText``; the tables escape
/// their cells themselves).
enum RoutesOutput {
    static func list(_ stats: [RouteStatusDocument]) -> String {
        // WHEN is the route's predicates; MATCH is the shadow comparisons' match rate.
        var rows = [["ID", "METHODS", "PATH", "WHEN", "MODE", "SERVICE", "MATCH", "SAMPLES", "GATE"]]
        for status in stats {
            let route = status.route
            rows.append([
                route.id, route.methods.isEmpty ? "*" : route.methods.joined(separator: ","), route.path, predicates(route) ?? "-", mode(route),
                route.service ?? "-", status.matchRate.map { PromotionGate.percent($0) } ?? "-", "\(status.evidence.samples)",
                route.service == nil ? "-" : (status.gate.holds ? "holds" : "fails"),
            ])
        }
        let since = stats.first.map { "evidence since \(ReportFormatting.time($0.evidenceSince))" } ?? "no routes"
        return TextTable.render(rows) + "\n\n" + since
    }

    static func show(_ status: RouteStatusDocument, changes: [ChangeDocument]) -> String {
        let route = status.route
        let evidence = status.evidence
        let shown: (String) -> String = TerminalText.escape
        let service = shown(route.service ?? "-")
        var lines = [
            "\(shown(route.id)): \(shown(route.methods.isEmpty ? "*" : route.methods.joined(separator: ","))) \(shown(route.path))",
            "  when        \(shown(predicates(route) ?? "every request on its path"))",
            "  mode        \(shown(mode(route)))",
            "  served by   \(route.mode == "canary" ? "\(service) for \(percent(route.canary?.percent)), \(shown(route.legacy)) for the rest" : shown(route.servedBy))",
            "  legacy      \(shown(route.legacy))",
            "  service     \(service)\(route.fallback ? " (falls back to legacy)" : "")",
        ]
        if let sticky = route.canary?.stickyKey { lines.append("  sticky by   \(shown(sticky))") }
        lines += [
            "",
            "Evidence since \(ReportFormatting.time(status.evidenceSince)):",
            "  coverage           \(status.coverage.summary)",
            "  samples            \(evidence.samples)",
            "  match rate         \(status.matchRate.map { PromotionGate.percent($0) } ?? "-") (\(evidence.mismatches) mismatches; \(evidence.noiseOnly) differed only in learned noise)",
            "  by kind            status \(evidence.statusMismatches), header \(evidence.headerMismatches), body \(evidence.bodyMismatches)",
            "  uncomparable       \(evidence.uncomparable)",
            "  skipped            \(evidence.skipped.isEmpty ? "0" : evidence.skipped.sorted { $0.key < $1.key }.map { "\(shown($0.key)) \($0.value)" }.joined(separator: ", "))",
            "  latency p50/p99    legacy \(millis(evidence.legacyP50))/\(millis(evidence.legacyP99)), service \(millis(evidence.serviceP50))/\(millis(evidence.serviceP99))",
            "",
            "Gate \(status.gate.holds ? "holds" : "does not hold"):",
        ]
        lines += gateLines(status.gate).map { "  " + $0 }
        lines += [
            "",
            "Traffic (legacy quiet window): legacy \(status.recentTraffic.legacy), service \(status.recentTraffic.service) (\(status.recentTraffic.serviceErrors) failed)",
            "  legacy last served it: \(status.lastLegacyTraffic.map(ReportFormatting.time) ?? "never recorded")",
        ]
        if !changes.isEmpty {
            lines += ["", "Recent changes:", history(changes).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")]
        }
        return lines.joined(separator: "\n")
    }

    static func operation(_ result: OperationDocument) -> String {
        var lines = [TerminalText.escape(result.summary)]
        if result.changed {
            lines.append(
                "table \(short(result.tableVersionBefore)) → \(short(result.tableVersionAfter)); recorded as change \(result.changes.compactMap(\.id).map(String.init).joined(separator: ", "))"
            )
        }
        if let gate = result.gate {
            lines.append("gate \(gate.holds ? "holds" : "does not hold")\(result.forced ? "; overridden with --force" : ""):")
            lines += gateLines(gate).map { "  " + $0 }
        }
        return lines.joined(separator: "\n")
    }

    static func history(_ changes: [ChangeDocument]) -> String {
        guard !changes.isEmpty else { return "no changes recorded" }
        var rows = [["ID", "WHEN (UTC)", "ACTOR", "SOURCE", "ROUTE", "CHANGE", "TABLE", "REASON"]]
        for change in changes {
            let what: String
            switch (change.modeBefore, change.modeAfter) {
            case (let before?, let after?): what = before == after ? "edited" : "\(before) → \(after)"
            case (nil, let after?): what = "added (\(after))"
            case (let before?, nil): what = "removed (was \(before))"
            case (nil, nil): what = change.routeId == nil ? "table" : "-"
            }
            rows.append([
                change.id.map(String.init) ?? "-", ReportFormatting.time(change.changedAt), change.actor, change.source, change.routeId ?? "*", what,
                "\(short(change.tableVersionBefore ?? "-")) → \(short(change.tableVersionAfter))", change.reason ?? "",
            ])
        }
        return TextTable.render(rows)
    }

    /// `ok   minSamples: 612 (gate ≥ 500)`
    static func gateLines(_ gate: VerdictDocument) -> [String] {
        gate.checks.map {
            "\($0.passed ? "ok  " : "FAIL") \(TerminalText.escape($0.name)): \(TerminalText.escape($0.actual)) (gate \(TerminalText.escape($0.limit)))"
        }
    }

    /// The route's predicates on one line (``RouteMatch/summary``), or nil when it has none. A
    /// `match` this build can't read (from a newer proxy's admin API) is shown as its JSON.
    static func predicates(_ route: RouteDocument) -> String? {
        guard let json = route.match, json != .object([:]), json != .null else { return nil }
        if let match = RouteMatch(json: json) { return match.summary }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(json)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
    }

    private static func mode(_ route: RouteDocument) -> String {
        route.mode == "canary" ? "canary \(percent(route.canary?.percent))" : route.mode
    }

    private static func percent(_ value: Double?) -> String {
        value.map { RouteTableDocument.numberText($0) + "%" } ?? "-"
    }

    private static func millis(_ value: Double?) -> String {
        value.map { String(format: "%.1f ms", $0) } ?? "-"
    }

    private static func short(_ version: String) -> String {
        TerminalText.escape(version.prefix(8))
    }
}
