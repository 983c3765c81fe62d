// The StranglerFig dashboard: plain JS against the admin API, no build step, no CDN.
// The routes table refreshes every 5 s and an open route's detail every 10 s, without a reload.
"use strict";

// `matches` holds each live route's predicates by id, from /api/routes: the report has none.
const state = { token: sessionStorage.getItem("strangler-token") || "", selected: null, refreshes: 0, matches: {} };

const $ = (selector) => document.querySelector(selector);
const text = (value) => (value === null || value === undefined ? "∅" : String(value));
const percent = (value) => (value === null || value === undefined ? "–" : (value * 100).toFixed(value >= 0.1 || value === 0 ? 1 : 2) + "%");
const time = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "–");

// A length as the CLI states it (EvidenceCoverage.duration): hours and minutes, seconds only under
// a minute, rounded down so coverage is never overstated: 83520 s is "23h12m", 86400 s "24h".
function duration(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  if (whole < 60) return whole + "s";
  const hours = Math.floor(whole / 3600), minutes = Math.floor((whole % 3600) / 60);
  if (hours === 0) return minutes + "m";
  return minutes === 0 ? hours + "h" : hours + "h" + minutes + "m";
}

// The CLI's and the gate's phrase: "evidence covers 23h12m of 24h (48m dropped)".
function coverageSummary(coverage) {
  const missing = (reason) => coverage.gaps.filter((gap) => gap.reason === reason)
    .reduce((sum, gap) => sum + (Date.parse(gap.to) - Date.parse(gap.from)) / 1000, 0);
  const parts = [];
  if (missing("retention") > 0) parts.push(duration(missing("retention")) + " before retention");
  if (missing("dropped") > 0) parts.push(duration(missing("dropped")) + " dropped");
  return "evidence covers " + duration(coverage.coveredSeconds) + " of " + duration(coverage.windowSeconds) +
    (parts.length ? " (" + parts.join(", ") + ")" : "");
}

const gapReasons = { retention: "removed by retention", dropped: "the recorder dropped comparisons" };
const gapText = (gap) => time(gap.from) + " – " + time(gap.to) + ": " + (gapReasons[gap.reason] || gap.reason);

// The routes table's coverage cell: a quiet "complete", or "23h12m of 24h" as a warning with the
// gaps in its tooltip.
function coverageBadge(coverage) {
  const span = document.createElement("span");
  if (!coverage) {
    span.textContent = "–";
    return span;
  }
  span.className = coverage.complete ? "muted" : "warn";
  span.textContent = coverage.complete ? "complete" : duration(coverage.coveredSeconds) + " of " + duration(coverage.windowSeconds);
  span.title = [coverageSummary(coverage)].concat(coverage.gaps.map(gapText)).join("\n");
  return span;
}

// A route's predicates on one line, as the CLI's WHEN column writes them (RouteMatch.summary):
// "host shop.example.com · header x-channel: web · query tenant: t-17|t-42 · cookie beta present".
// A value or name that isn't plain is quoted, so a space, "|" or "·" in it reads as part of it.
const plain = /^[A-Za-z0-9\-._~:\/@+=,;!$*%\[\]()]+$/;
const quoted = (value) => (plain.test(value) ? value : '"' + String(value).replace(/["\\]/g, "\\$&") + '"');
function conditionText(value) {
  if (typeof value === "string") return ": " + quoted(value);
  if (Array.isArray(value)) return ": " + value.map(quoted).join("|");
  return value && value.present === false ? " absent" : " present";
}
function matchText(match) {
  if (!match) return "";
  const parts = match.host ? ["host " + match.host] : [];
  for (const [key, kind] of [["headers", "header"], ["query", "query"], ["cookies", "cookie"]]) {
    const conditions = match[key] || {};
    for (const name of Object.keys(conditions).sort()) parts.push(kind + " " + quoted(name) + conditionText(conditions[name]));
  }
  return parts.join(" · ");
}

// The path cell: the path, and the route's predicates under it when it has any.
function pathCell(path, match) {
  const td = cell(path || "–");
  const when = matchText(match);
  if (when) {
    const line = document.createElement("div");
    line.className = "when muted";
    line.textContent = "when " + when;
    td.appendChild(line);
  }
  return td;
}

function cell(content, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  return td;
}

function code(value) {
  const element = document.createElement("code");
  element.textContent = text(value);
  return element;
}

function badge(mode) {
  const span = document.createElement("span");
  span.className = "mode " + mode;
  span.textContent = mode;
  return span;
}

async function api(path) {
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    $("#token-form").hidden = false;
    throw new Error("the admin API needs a token for reads (" + response.status + ")");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

async function refreshRoutes() {
  try {
    const since = $("#window").value;
    const [report, table] = await Promise.all([
      api("/api/report?since=" + encodeURIComponent(since) + "&examples=0"), api("/api/routes"),
    ]);
    state.matches = Object.fromEntries(table.routes.map((route) => [route.id, route.match || null]));
    const tbody = $("#routes tbody");
    tbody.replaceChildren();
    for (const route of report.routes) {
      const row = document.createElement("tr");
      row.dataset.route = route.id;
      if (route.id === state.selected) row.className = "selected";
      row.append(
        cell(route.id), cell(badge(route.mode)), pathCell(route.path, state.matches[route.id]), cell(route.service || "–"),
        cell(String(route.samples), "n"), cell(percent(route.matchRate), "n"),
      );
      const gate = document.createElement("span");
      gate.className = route.gate.holds ? "ok" : "bad";
      gate.textContent = route.gate.holds ? "holds" : "fails";
      row.append(cell(gate), cell(coverageBadge(route.coverage)));
      row.addEventListener("click", () => select(route.id));
      tbody.appendChild(row);
    }
    $("#error").hidden = true;
    state.refreshes += 1;
    const updated = $("#updated");
    updated.dataset.refreshes = String(state.refreshes);
    updated.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    $("#error").hidden = false;
    $("#error").textContent = error.message;
  }
}

async function select(routeID) {
  state.selected = routeID;
  for (const row of document.querySelectorAll("#routes tbody tr")) {
    row.className = row.dataset.route === routeID ? "selected" : "";
  }
  await refreshDetail();
}

async function refreshDetail() {
  if (!state.selected) return;
  try {
    const since = $("#window").value;
    const report = await api("/api/report?route=" + encodeURIComponent(state.selected) + "&since=" + encodeURIComponent(since));
    const route = report.routes[0];
    if (!route) return;
    $("#detail").hidden = false;
    $("#detail-title").replaceChildren(document.createTextNode(route.id + " "), badge(route.mode));
    const interval = route.matchRateInterval ? " (95% CI " + percent(route.matchRateInterval.low) + "–" + percent(route.matchRateInterval.high) + ")" : "";
    const when = matchText(state.matches[route.id]);
    $("#detail-facts").textContent =
      (route.path || "") + (when ? " when " + when : "") + (route.service ? " → " + route.service : "") + " · " + route.samples + " samples · match rate " +
      percent(route.matchRate) + interval + " · mismatches: status " + route.mismatchesByKind.status + ", header " +
      route.mismatchesByKind.header + ", body " + route.mismatchesByKind.body + " · latency p99 legacy " +
      text(route.latency.legacy.p99) + " ms, service " + text(route.latency.service.p99) + " ms";
    const gate = $("#detail-gate");
    gate.replaceChildren();
    for (const check of route.gate.checks) {
      const item = document.createElement("li");
      item.className = check.passed ? "ok" : "bad";
      item.textContent = (check.passed ? "✓ " : "✗ ") + check.name + ": " + check.actual + " (gate " + check.limit + ")";
      gate.appendChild(item);
    }
    const coverage = route.coverage;
    const coverageLine = $("#detail-coverage");
    const gaps = $("#detail-coverage-gaps");
    gaps.replaceChildren();
    if (coverage) {
      // Only the time since the route's first comparison has to be covered.
      const sinceFirst = !coverage.complete || coverage.coveredSeconds >= coverage.windowSeconds ? ""
        : coverage.coveredSeconds > 0 ? ", all of it since the route's first comparison" : ", the route has no comparisons yet";
      coverageLine.className = coverage.complete ? "muted" : "warn";
      coverageLine.textContent = "Coverage " + (coverage.complete ? "complete: " : "incomplete: ") + coverageSummary(coverage) + sinceFirst +
        (coverage.gaps.length ? "; " + coverage.gaps.length + (coverage.gaps.length === 1 ? " gap" : " gaps") + ":" : "");
      for (const gap of coverage.gaps.slice(0, 10)) {
        const item = document.createElement("li");
        item.textContent = gapText(gap);
        gaps.appendChild(item);
      }
      if (coverage.gaps.length > 10) {
        const more = document.createElement("li");
        more.className = "muted";
        more.textContent = "… and " + (coverage.gaps.length - 10) + " more";
        gaps.appendChild(more);
      }
    } else {
      coverageLine.className = "muted";
      coverageLine.textContent = "Coverage: not reported";
    }
    const differences = $("#differences tbody");
    differences.replaceChildren();
    const examples = $("#examples tbody");
    examples.replaceChildren();
    for (const item of route.topDifferences) {
      const row = document.createElement("tr");
      row.append(cell(code(item.pointer || "(status)")), cell(item.kinds.join(", ")), cell(String(item.count), "n"), cell(percent(item.share), "n"), cell(time(item.lastSeen)));
      differences.appendChild(row);
      for (const example of item.examples) {
        const line = document.createElement("tr");
        const request = document.createElement("div");
        request.append(code(example.requestID), document.createElement("br"), document.createTextNode(example.method + " " + example.path));
        line.append(cell(code(item.pointer)), cell(request), cell(code(example.legacy), "legacy"), cell(code(example.service), "service"));
        examples.appendChild(line);
      }
    }
    const excused = $("#excused");
    excused.replaceChildren();
    if (route.accepted.length || route.noise.length) {
      const title = document.createElement("h3");
      title.textContent = "Excused: accepted differences and learned noise";
      const list = document.createElement("ul");
      for (const item of route.accepted) {
        const entry = document.createElement("li");
        entry.append(code(item.pointer), document.createTextNode(" — " + item.differences + " differences; “" + item.reason + "” (" + item.owner + ")"));
        list.appendChild(entry);
      }
      for (const item of route.noise) {
        const entry = document.createElement("li");
        entry.append(code(item.pointer), document.createTextNode(" — legacy differs from itself in " + percent(item.share) + " of probes"));
        list.appendChild(entry);
      }
      excused.append(title, list);
    }
  } catch (error) {
    $("#error").hidden = false;
    $("#error").textContent = error.message;
  }
}

$("#token-form form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("strangler-token", state.token);
  $("#token-form").hidden = true;
  refreshRoutes();
  refreshDetail();
});
$("#window").addEventListener("change", () => { refreshRoutes(); refreshDetail(); });

refreshRoutes();
setInterval(refreshRoutes, 5000);
setInterval(refreshDetail, 10000);
