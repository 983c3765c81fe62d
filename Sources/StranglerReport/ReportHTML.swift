import Foundation
import StranglerCore
import StranglerStore

/// The HTML rendering: one self-contained file, inline CSS and inline SVG charts, no external
/// assets, so it can be attached to a ticket or opened offline.
public struct HTMLReportRenderer: Sendable {
    /// A renderer; it has no settings.
    public init() {}

    /// The report as one HTML document, with every value from the store or the table escaped.
    public func render(_ report: Report) -> String {
        var body = """
            <header><h1>Diff report</h1>
            <p>Comparisons since <b>\(Self.escape(ReportFormatting.time(report.since)))</b> UTC, generated \(Self.escape(ReportFormatting.time(report.generatedAt))). Match rates excuse learned noise and accepted differences. Store <code>\(Self.escape(report.store))</code>.</p></header>
            <table class="overview"><thead><tr><th>route</th><th>mode</th><th class="n">samples</th><th class="n">match rate</th><th>95% CI</th><th class="n">status</th><th class="n">header</th><th class="n">body</th><th>gate</th></tr></thead><tbody>
            """
        for route in report.routes {
            body += """
                <tr><td><a href="#route-\(Self.escape(route.id))">\(Self.escape(route.id))</a></td><td><span class="mode \(Self.escape(route.mode))">\(Self.escape(route.mode))</span></td><td class="n">\(route.samples)</td><td class="n">\(ReportFormatting.percent(route.matchRate))</td><td>\(ReportFormatting.interval(route.matchRateInterval))</td><td class="n">\(route.mismatchesByKind.status)</td><td class="n">\(route.mismatchesByKind.header)</td><td class="n">\(route.mismatchesByKind.body)</td><td>\(route.gate.holds ? "<span class=ok>holds</span>" : "<span class=bad>fails</span>")</td></tr>
                """
        }
        body += "</tbody></table>"
        for route in report.routes { body += section(route) }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>StranglerFig diff report</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>\(Self.css)</style></head>
            <body>\(body)</body></html>

            """
    }

    private func section(_ route: RouteReport) -> String {
        var html = """
            <section id="route-\(Self.escape(route.id))"><h2>\(Self.escape(route.id)) <span class="mode \(Self.escape(route.mode))">\(Self.escape(route.mode))</span> \(route.gate.holds ? "<span class=ok>gate holds</span>" : "<span class=bad>gate fails</span>")</h2>
            <p class="facts">\(Self.escape(route.path ?? "")) \(route.service.map { "→ <b>\(Self.escape($0))</b>" } ?? "") · \(route.samples) samples · match rate <b>\(ReportFormatting.percent(route.matchRate))</b> (95% CI \(ReportFormatting.interval(route.matchRateInterval))) · \(route.noiseOnly) only noise · \(route.acceptedOnly) only accepted · \(route.uncomparable) uncomparable · skipped: \(Self.escape(ReportFormatting.skipped(route.skipped)))</p>
            <p class="facts">latency p50/p99 ms: legacy \(ReportFormatting.millis(route.latency.legacy.p50))/\(ReportFormatting.millis(route.latency.legacy.p99)), service \(ReportFormatting.millis(route.latency.service.p50))/\(ReportFormatting.millis(route.latency.service.p99)) · mismatches: status \(route.mismatchesByKind.status), header \(route.mismatchesByKind.header), body \(route.mismatchesByKind.body)</p>
            <div class="charts">\(Self.matchChart(route))\(Self.latencyChart(route))</div>
            <ul class="gate">
            """
        for check in route.gate.checks {
            html +=
                "<li class=\"\(check.passed ? "ok" : "bad")\">\(check.passed ? "✓" : "✗") <code>\(Self.escape(check.name))</code> \(Self.escape(check.actual)) (gate \(Self.escape(check.limit)))</li>"
        }
        html += "</ul>"
        if !route.topDifferences.isEmpty {
            html +=
                "<h3>Top differences</h3><table><thead><tr><th>pointer</th><th>kind</th><th class=n>count</th><th class=n>share</th><th>first seen</th><th>last seen</th></tr></thead><tbody>"
            for item in route.topDifferences {
                html +=
                    "<tr><td><code>\(Self.escape(item.pointer.isEmpty ? "(status)" : item.pointer))</code></td><td>\(Self.escape(item.kinds.joined(separator: ", ")))</td><td class=n>\(item.count)</td><td class=n>\(ReportFormatting.percent(item.share))</td><td>\(ReportFormatting.time(item.firstSeen))</td><td>\(ReportFormatting.time(item.lastSeen))</td></tr>"
            }
            html +=
                "</tbody></table><h3>Examples</h3><table class=examples><thead><tr><th>pointer</th><th>request</th><th>legacy</th><th>service</th></tr></thead><tbody>"
            for item in route.topDifferences {
                for example in item.examples {
                    html +=
                        "<tr><td><code>\(Self.escape(item.pointer))</code></td><td><code>\(Self.escape(example.requestID))</code><br>\(Self.escape(example.method)) \(Self.escape(example.path))</td><td class=legacy><code>\(Self.escape(example.legacy ?? "∅"))</code></td><td class=service><code>\(Self.escape(example.service ?? "∅"))</code></td></tr>"
                }
            }
            html += "</tbody></table>"
        }
        if !route.noise.isEmpty {
            html +=
                "<h3>Learned noise</h3><p class=note>Legacy differs from itself here, in \(route.noiseProbes) probes; these differences are excused.</p><ul>"
            html += route.noise.map {
                "<li><code>\(Self.escape($0.pointer))</code> in \(ReportFormatting.percent($0.share)) of probes, \($0.differences) differences excused</li>"
            }.joined()
            html += "</ul>"
        }
        if !route.accepted.isEmpty {
            html += "<h3>Accepted differences</h3><ul>"
            html += route.accepted.map {
                "<li><code>\(Self.escape($0.pointer))</code> — \($0.differences) differences; “\(Self.escape($0.reason))” (\(Self.escape($0.owner)), \(ReportFormatting.time($0.acceptedAt))\($0.until.map { ", until \(ReportFormatting.time($0))" } ?? ""))</li>"
            }.joined()
            html += "</ul>"
        }
        return html + "</section>"
    }

    // MARK: - Charts

    static let width = 460.0
    static let height = 160.0
    static let inset = (left: 44.0, right: 10.0, top: 18.0, bottom: 24.0)

    /// Match rate per timeline bucket, 0–100%.
    static func matchChart(_ route: RouteReport) -> String {
        let points = route.timeline.compactMap { bucket -> (Date, Double)? in
            bucket.samples > 0 ? (bucket.start, Double(bucket.samples - bucket.mismatches) / Double(bucket.samples)) : nil
        }
        return chart(
            title: "match rate over time",
            series: [("match rate", "#2f7d32", points)],
            yMax: 1,
            yLabel: { "\(Int(($0 * 100).rounded()))%" },
            route: route
        )
    }

    /// Mean latency per bucket, legacy and service.
    static func latencyChart(_ route: RouteReport) -> String {
        let legacy = route.timeline.compactMap { bucket in bucket.legacyMeanMs.map { (bucket.start, $0) } }
        let service = route.timeline.compactMap { bucket in bucket.serviceMeanMs.map { (bucket.start, $0) } }
        let top = max(1, (legacy + service).map(\.1).max() ?? 1) * 1.1
        return chart(
            title: "mean latency (ms)",
            series: [("legacy", "#6d4c41", legacy), ("service", "#1565c0", service)],
            yMax: top,
            yLabel: { String(format: $0 < 10 ? "%.1f" : "%.0f", $0) },
            route: route
        )
    }

    static func chart(
        title: String,
        series: [(String, String, [(Date, Double)])],
        yMax: Double,
        yLabel: (Double) -> String,
        route: RouteReport
    ) -> String {
        let plotWidth = width - inset.left - inset.right
        let plotHeight = height - inset.top - inset.bottom
        let times = series.flatMap { $0.2.map(\.0) }
        var svg =
            "<figure><svg class=\"chart\" role=\"img\" aria-label=\"\(escape(title)) for \(escape(route.id))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<text x=\"\(inset.left)\" y=\"12\" class=\"title\">\(escape(title))</text>"
        for step in 0...4 {
            let value = yMax * Double(step) / 4
            let y = inset.top + plotHeight * (1 - Double(step) / 4)
            svg += "<line x1=\"\(inset.left)\" x2=\"\(width - inset.right)\" y1=\"\(f(y))\" y2=\"\(f(y))\" class=\"grid\"/>"
            svg += "<text x=\"\(inset.left - 4)\" y=\"\(f(y + 3))\" class=\"axis\" text-anchor=\"end\">\(escape(yLabel(value)))</text>"
        }
        guard let first = times.min(), let last = times.max() else {
            return svg + "<text x=\"\(width / 2)\" y=\"\(height / 2)\" class=\"axis\" text-anchor=\"middle\">no samples</text></svg></figure>"
        }
        let span = max(last.timeIntervalSince(first), Double(route.bucketSeconds))
        func x(_ date: Date) -> Double { inset.left + plotWidth * date.timeIntervalSince(first) / span }
        func y(_ value: Double) -> Double { inset.top + plotHeight * (1 - min(value, yMax) / yMax) }
        svg += "<text x=\"\(inset.left)\" y=\"\(f(height - 6))\" class=\"axis\">\(escape(ReportFormatting.time(first)))</text>"
        svg +=
            "<text x=\"\(width - inset.right)\" y=\"\(f(height - 6))\" class=\"axis\" text-anchor=\"end\">\(escape(ReportFormatting.time(last)))</text>"
        for (index, (name, colour, points)) in series.enumerated() where !points.isEmpty {
            let path = points.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ")
            svg +=
                "<polyline class=\"series\" data-series=\"\(escape(name))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(path)\"/>"
            for point in points {
                svg +=
                    "<circle cx=\"\(f(x(point.0)))\" cy=\"\(f(y(point.1)))\" r=\"2.5\" fill=\"\(colour)\"><title>\(escape(name)) \(escape(yLabel(point.1))) at \(escape(ReportFormatting.time(point.0)))</title></circle>"
            }
            if series.count > 1 {
                svg +=
                    "<text x=\"\(f(width - inset.right - 60 * Double(series.count - index)))\" y=\"12\" fill=\"\(colour)\" class=\"legend\">● \(escape(name))</text>"
            }
        }
        return svg + "</svg></figure>"
    }

    private static func f(_ value: Double) -> String {
        String(format: "%.1f", value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d2430;padding:0 16px}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-top:1px solid #dde3ea;padding-top:18px;margin-top:28px}h3{font-size:15px;margin:16px 0 6px}
        table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f4;vertical-align:top}
        th{background:#f5f7f9;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
        code{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
        .ok{color:#2f7d32;font-weight:600}.bad{color:#c62828;font-weight:600}.facts{color:#4a5563;margin:4px 0}
        .mode{font-size:12px;padding:1px 7px;border-radius:10px;background:#eceff1;color:#37474f;font-weight:500}
        .mode.shadow{background:#fff3e0;color:#e65100}.mode.canary{background:#fffde7;color:#f57f17}.mode.service{background:#e3f2fd;color:#0d47a1}.mode.retired{background:#e8f5e9;color:#1b5e20}
        .charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}svg.chart{background:#fafbfc;border:1px solid #e3e8ee;border-radius:6px}
        svg .grid{stroke:#e3e8ee;stroke-width:1}svg .axis{font-size:10px;fill:#6b7785}svg .title{font-size:11px;font-weight:600;fill:#37474f}svg .legend{font-size:10px}
        ul.gate{list-style:none;padding:0}ul.gate li{margin:2px 0}td.legacy code{color:#6d4c41}td.service code{color:#1565c0}.note{color:#4a5563}
        """
}

/// The formats `strangler report` writes.
public enum ReportFormat: String, Sendable, CaseIterable {
    /// `text` for a terminal, `markdown` for a pull request, `json` the stable format
    /// (docs/report-json.md), `html` one self-contained file.
    case text, markdown, json, html

    /// The report in this format; `colour` applies to text only.
    public func render(_ report: Report, colour: Bool = false) -> String {
        switch self {
        case .text: TextReportRenderer(colour: colour).render(report)
        case .markdown: MarkdownReportRenderer().render(report)
        case .json: String(decoding: report.json(), as: UTF8.self) + "\n"
        case .html: HTMLReportRenderer().render(report)
        }
    }
}
