import Foundation
import StranglerCore
import StranglerStore

/// Numbers and times as reviewers read them, shared by the renderings and the CLI.
public enum ReportFormatting {
    static func percent(_ value: Double?) -> String {
        value.map { PromotionGate.percent($0) } ?? "-"
    }

    static func interval(_ interval: RouteReport.Interval?) -> String {
        guard let interval else { return "-" }
        return "\(PromotionGate.percent(interval.low))–\(PromotionGate.percent(interval.high))"
    }

    static func millis(_ value: Double?) -> String {
        value.map { String(format: "%.1f", $0) } ?? "-"
    }

    /// `2026-11-22T18:10:51` (UTC, to the second).
    public static func time(_ date: Date) -> String {
        date.formatted(
            Date.ISO8601FormatStyle().year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false).timeSeparator(.colon)
        )
    }

    /// A value for a table cell: absent values are `∅`, long ones cut.
    static func value(_ text: String?, width: Int = 40) -> String {
        guard let text else { return "∅" }
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.count > width ? String(flat.prefix(width - 1)) + "…" : flat
    }

    static func skipped(_ skipped: [String: Int]) -> String {
        skipped.isEmpty ? "none" : skipped.sorted { $0.key < $1.key }.map { "\(TerminalText.escape($0.key)) \($0.value)" }.joined(separator: ", ")
    }
}

/// The terminal rendering: aligned tables; colour only when asked (a TTY).
///
/// Every value from the store or the table is escaped (``TerminalText``): the only escape
/// sequences in the output are the renderer's own colours.
public struct TextReportRenderer: Sendable {
    /// Whether to colour with ANSI escapes: for a terminal, not for a file or a pipe.
    public var colour: Bool

    /// - Parameter colour: whether to colour with ANSI escapes.
    public init(colour: Bool) {
        self.colour = colour
    }

    private func paint(_ text: String, _ code: String) -> String {
        colour ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    /// The report as text: an overview table of every route, then a section per route with its
    /// counts, gate checks, top differences with examples, noise and accepted differences.
    public func render(_ report: Report) -> String {
        var out = [
            paint("Diff report", "1")
                + " — comparisons since \(ReportFormatting.time(report.since)) (UTC), generated \(ReportFormatting.time(report.generatedAt))",
            "store \(TerminalText.escape(report.store))" + (report.routesFile.map { ", routes \(TerminalText.escape($0))" } ?? ""),
            "",
        ]
        var overview = [["ROUTE", "MODE", "SAMPLES", "MATCH", "95% CI", "STATUS", "HEADER", "BODY", "GATE"]]
        for route in report.routes {
            overview.append([
                route.id, route.mode, "\(route.samples)", ReportFormatting.percent(route.matchRate),
                ReportFormatting.interval(route.matchRateInterval), "\(route.mismatchesByKind.status)", "\(route.mismatchesByKind.header)",
                "\(route.mismatchesByKind.body)", route.gate.holds ? "holds" : "fails",
            ])
        }
        out.append(TextTable.render(overview))
        for route in report.routes {
            out.append("")
            out += section(route)
        }
        return out.joined(separator: "\n") + "\n"
    }

    private func section(_ route: RouteReport) -> [String] {
        let verdict = route.gate.holds ? paint("gate holds", "32") : paint("gate fails", "31")
        let shown: (String) -> String = TerminalText.escape
        var heading = paint("■ \(shown(route.id))", "1") + "  " + shown(route.mode)
        if let service = route.service { heading += " → " + shown(service) }
        if let path = route.path { heading += "  " + shown(path) }
        var lines = [
            heading + "  " + verdict,
            "  samples \(route.samples): \(route.matches) match, \(route.mismatches) mismatch (\(route.noiseOnly) only noise, \(route.acceptedOnly) only accepted — both counted as matches), \(route.uncomparable) uncomparable",
            "  match rate \(ReportFormatting.percent(route.matchRate)) (95% CI \(ReportFormatting.interval(route.matchRateInterval)))",
            "  mismatches by kind: status \(route.mismatchesByKind.status), header \(route.mismatchesByKind.header), body \(route.mismatchesByKind.body)",
            "  skipped: \(ReportFormatting.skipped(route.skipped))",
            "  latency ms p50/p99: legacy \(ReportFormatting.millis(route.latency.legacy.p50))/\(ReportFormatting.millis(route.latency.legacy.p99)), service \(ReportFormatting.millis(route.latency.service.p50))/\(ReportFormatting.millis(route.latency.service.p99))",
        ]
        lines += route.gate.checks.map {
            "  " + ($0.passed ? paint("ok  ", "32") : paint("FAIL", "31")) + " \(shown($0.name)): \(shown($0.actual)) (gate \(shown($0.limit)))"
        }
        if !route.topDifferences.isEmpty {
            lines.append("  Top differences:")
            var rows = [["POINTER", "KIND", "COUNT", "SHARE", "FIRST SEEN", "LAST SEEN"]]
            for item in route.topDifferences {
                rows.append([
                    item.pointer.isEmpty ? "(status)" : item.pointer, item.kinds.joined(separator: ","), "\(item.count)",
                    ReportFormatting.percent(item.share), ReportFormatting.time(item.firstSeen), ReportFormatting.time(item.lastSeen),
                ])
            }
            lines += TextTable.render(rows).split(separator: "\n").map { "    " + $0 }
            lines.append("  Examples (legacy → service):")
            var examples = [["POINTER", "REQUEST", "METHOD", "PATH", "LEGACY", "SERVICE"]]
            for item in route.topDifferences {
                for example in item.examples {
                    examples.append([
                        item.pointer.isEmpty ? "(status)" : item.pointer, example.requestID, example.method,
                        ReportFormatting.value(example.path, width: 32),
                        ReportFormatting.value(example.legacy), ReportFormatting.value(example.service),
                    ])
                }
            }
            lines += TextTable.render(examples).split(separator: "\n").map { "    " + $0 }
        }
        if !route.noise.isEmpty {
            lines.append("  Learned noise (legacy differs from itself; excused), \(route.noiseProbes) probes:")
            lines += route.noise.map {
                "    \(shown($0.pointer))  in \(ReportFormatting.percent($0.share)) of probes, \($0.differences) differences excused"
            }
        }
        if !route.accepted.isEmpty {
            lines.append("  Accepted differences (excused):")
            lines += route.accepted.map {
                "    #\($0.id) \(shown($0.pointer))  \($0.differences) differences; \"\(shown($0.reason))\" — \(shown($0.owner)), \(ReportFormatting.time($0.acceptedAt))"
                    + ($0.until.map { ", until \(ReportFormatting.time($0))" } ?? "")
            }
        }
        return lines
    }
}

/// The markdown rendering, to paste into a pull request.
///
/// It is printed to standard output by default, so values are escaped for the terminal too.
public struct MarkdownReportRenderer: Sendable {
    /// A renderer; it has no settings.
    public init() {}

    private static func cell(_ text: String) -> String {
        TerminalText.escape(text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " "))
    }

    private static func code(_ text: String?) -> String {
        guard let text else { return "∅" }
        return "`" + cell(ReportFormatting.value(text, width: 60)).replacingOccurrences(of: "`", with: "'") + "`"
    }

    /// The report as markdown: an overview table, then a section per route, with the examples
    /// folded in a `<details>` block.
    public func render(_ report: Report) -> String {
        var out = [
            "## Diff report",
            "",
            "Comparisons since \(ReportFormatting.time(report.since)) UTC (generated \(ReportFormatting.time(report.generatedAt))). Match rates excuse learned noise and accepted differences.",
            "",
            "| route | mode | samples | match rate | 95% CI | status | header | body | gate |",
            "|---|---|---:|---:|---|---:|---:|---:|---|",
        ]
        for route in report.routes {
            out.append(
                "| \(Self.cell(route.id)) | \(Self.cell(route.mode)) | \(route.samples) | \(ReportFormatting.percent(route.matchRate)) | \(ReportFormatting.interval(route.matchRateInterval)) | \(route.mismatchesByKind.status) | \(route.mismatchesByKind.header) | \(route.mismatchesByKind.body) | \(route.gate.holds ? "✅ holds" : "❌ fails") |"
            )
        }
        for route in report.routes {
            out += ["", "### \(Self.cell(route.id))", ""]
            out.append(
                "\(Self.cell(route.mode))\(route.service.map { " → \(Self.cell($0))" } ?? ""), \(route.samples) samples, match rate \(ReportFormatting.percent(route.matchRate)) (95% CI \(ReportFormatting.interval(route.matchRateInterval))); \(route.noiseOnly) only noise, \(route.acceptedOnly) only accepted, \(route.uncomparable) uncomparable; skipped: \(ReportFormatting.skipped(route.skipped)). Latency p50/p99 ms: legacy \(ReportFormatting.millis(route.latency.legacy.p50))/\(ReportFormatting.millis(route.latency.legacy.p99)), service \(ReportFormatting.millis(route.latency.service.p50))/\(ReportFormatting.millis(route.latency.service.p99))."
            )
            out.append("")
            out += route.gate.checks.map {
                "- \($0.passed ? "✅" : "❌") `\(Self.cell($0.name))`: \(Self.cell($0.actual)) (gate \(Self.cell($0.limit)))"
            }
            if !route.topDifferences.isEmpty {
                out += ["", "| pointer | kind | count | share | first seen | last seen |", "|---|---|---:|---:|---|---|"]
                for item in route.topDifferences {
                    out.append(
                        "| \(Self.code(item.pointer.isEmpty ? "(status)" : item.pointer)) | \(Self.cell(item.kinds.joined(separator: ", "))) | \(item.count) | \(ReportFormatting.percent(item.share)) | \(ReportFormatting.time(item.firstSeen)) | \(ReportFormatting.time(item.lastSeen)) |"
                    )
                }
                out += [
                    "", "<details><summary>Examples</summary>", "", "| pointer | request | request line | legacy | service |",
                    "|---|---|---|---|---|",
                ]
                for item in route.topDifferences {
                    for example in item.examples {
                        out.append(
                            "| \(Self.code(item.pointer)) | \(Self.cell(example.requestID)) | \(Self.cell(example.method + " " + example.path)) | \(Self.code(example.legacy)) | \(Self.code(example.service)) |"
                        )
                    }
                }
                out += ["", "</details>"]
            }
            if !route.noise.isEmpty {
                out += [
                    "",
                    "Learned noise (excused): "
                        + route.noise.map { "\(Self.code($0.pointer)) (\(ReportFormatting.percent($0.share)) of \(route.noiseProbes) probes)" }
                        .joined(separator: ", "),
                ]
            }
            if !route.accepted.isEmpty {
                out += ["", "Accepted differences (excused):"]
                out += route.accepted.map {
                    "- \(Self.code($0.pointer)): \($0.differences) differences. \(Self.cell($0.reason)) (\(Self.cell($0.owner))\($0.until.map { ", until \(ReportFormatting.time($0))" } ?? ""))"
                }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }
}

/// Plain-text tables: left-aligned columns separated by two spaces.
///
/// Every cell is escaped for the terminal (``TerminalText``): cells hold ids, actors, reasons
/// and response values, and a control character in one must neither act on the terminal nor
/// break the alignment.
public enum TextTable {
    /// `rows` with the first as the header; the last column is not padded.
    public static func render(_ rows: [[String]]) -> String {
        guard let width = rows.first?.count else { return "" }
        let rows = rows.map { $0.map { TerminalText.escape($0) } }
        let counts = rows.map { $0.map(\.count) }
        var widths = Array(repeating: 0, count: width)
        for row in counts { for (index, count) in row.enumerated() { widths[index] = max(widths[index], count) } }
        // Padded by hand: Foundation's `padding(toLength:)` bridges through NSString, which was
        // most of printing a 90,000-route table.
        return zip(rows, counts).map { row, count in
            row.indices.map { index in
                index == row.count - 1 ? row[index] : row[index] + String(repeating: " ", count: widths[index] - count[index])
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
