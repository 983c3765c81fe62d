#!/usr/bin/env python3
"""The dashboard and the reports, checked in a real headless browser (Chromium, via Selenium).

Starts `strangler demo --traffic` on its own ports with its own data, lets comparisons pile up,
then:
  1. runs `strangler report` in all four formats and checks each shows real differences;
  2. opens the dashboard at the admin listener's `/`, checks the routes table, waits for a
     refresh without a page reload, clicks a route and checks the top differences and the
     examples side by side, and each route's evidence coverage in the table and the detail;
     saves a screenshot;
  3. opens the HTML report from disk and checks its inline SVG charts drew lines; saves a
     screenshot.
Artifacts (screenshots, reports, demo log) go to --artifacts. Exits 1 with the reason on failure.
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time, urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PORTS = dict(port=28180, admin=28181, legacy=28190, inventory=28191, tracking=28192, orders=28193)


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)
    print(f"ok: {message}")


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def wait_for(what, predicate, seconds):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as error:  # the demo may still be starting
            last = error
        time.sleep(0.5)
    fail(f"timed out after {seconds}s waiting for {what} (last: {last!r})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strangler", default=os.path.join(ROOT, ".build/debug/strangler"))
    parser.add_argument("--artifacts", default=os.path.join(ROOT, ".build/browser-artifacts"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    args = parser.parse_args()
    # The demo and the report commands run in a scratch folder: every path must be absolute.
    args.artifacts = os.path.abspath(args.artifacts)
    args.strangler = os.path.abspath(args.strangler)
    os.makedirs(args.artifacts, exist_ok=True)

    work = tempfile.mkdtemp(prefix="strangler-browser-")
    shutil.copy(os.path.join(ROOT, "routes.json"), os.path.join(work, "routes.json"))
    log = open(os.path.join(args.artifacts, "demo.log"), "w")
    demo = subprocess.Popen(
        [args.strangler, "demo", "--traffic", "--traffic-rate", "60", "--no-access-log",
         "--port", str(PORTS["port"]), "--admin-port", str(PORTS["admin"]), "--legacy-port", str(PORTS["legacy"]),
         "--inventory-port", str(PORTS["inventory"]), "--tracking-port", str(PORTS["tracking"]),
         "--orders-port", str(PORTS["orders"]), "--data-dir", os.path.join(work, "data"),
         "--migrations", os.path.join(ROOT, "migrations")],
        cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    driver = None
    try:
        admin = f"http://127.0.0.1:{PORTS['admin']}"
        wait_for("the admin listener", lambda: get_json(admin + "/healthz")["status"] == "ok", 60)

        def enough():
            stats = {route["route"]["id"]: route for route in get_json(admin + "/api/stats")}
            if stats["inventory-read"]["evidence"]["samples"] < 40 or stats["order-read"]["evidence"]["samples"] < 20:
                return False
            # Enough time for a chart: three timeline buckets.
            report = get_json(admin + "/api/report?route=inventory-read&examples=0")
            return len(report["routes"][0]["timeline"]) >= 3
        wait_for("comparisons to pile up over half a minute", enough, 120)

        # 1. The report, in every format, from the demo's store.
        env = dict(os.environ, STRANGLER_STORE=os.path.join(work, "data", "strangler.sqlite"))
        for fmt, name in [("text", "report.txt"), ("markdown", "report.md"), ("json", "report.json"), ("html", "report.html")]:
            out = os.path.join(args.artifacts, name)
            subprocess.run([args.strangler, "report", "--format", fmt, "--output", out, "--since", "1h",
                            "--migrations", os.path.join(ROOT, "migrations")], cwd=work, env=env, check=True)
            content = open(out).read()
            check("/totalOnHand" in content and "inventory-read" in content, f"the {fmt} report shows inventory-read's real difference at /totalOnHand")
        report = json.load(open(os.path.join(args.artifacts, "report.json")))
        inventory = next(route for route in report["routes"] if route["id"] == "inventory-read")
        check(inventory["samples"] >= 40 and inventory["topDifferences"][0]["examples"], "the json report has samples and examples")

        # 2. The dashboard in Chromium.
        options = webdriver.ChromeOptions()
        options.binary_location = args.chromium
        for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)
        driver.get(admin + "/")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#routes tbody tr")) >= 5)
        rows = {row.get_attribute("data-route"): row for row in driver.find_elements(By.CSS_SELECTOR, "#routes tbody tr")}
        check({"inventory-read", "order-read", "tracking-by-order"} <= set(rows), f"the routes table lists the demo's routes: {sorted(rows)}")
        cells = [cell.text for cell in rows["inventory-read"].find_elements(By.TAG_NAME, "td")]
        check(cells[1] == "shadow", f"inventory-read shows its mode: {cells}")
        check(int(cells[4]) >= 40, f"inventory-read shows its samples: {cells[4]}")
        check(cells[5].endswith("%"), f"inventory-read shows a live match rate: {cells[5]}")
        check(cells[6] in ("holds", "fails"), f"inventory-read shows its gate status: {cells[6]}")

        # Evidence coverage: the demo's routes are new, so what they have covers all of their time.
        headers = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#routes thead th")]
        check("coverage" in headers, f"the routes table has a coverage column: {headers}")
        column = headers.index("coverage")
        live = get_json(admin + "/api/report?route=inventory-read&examples=0")["routes"][0]["coverage"]
        check(live["complete"] and not live["gaps"], f"the API reports inventory-read's coverage complete: {live}")
        # Read in one go: the table is rebuilt on every refresh.
        shown = driver.execute_script(
            "const out = {};"
            "for (const row of document.querySelectorAll('#routes tbody tr')) {"
            "  const span = row.children[arguments[0]] && row.children[arguments[0]].querySelector('span');"
            "  out[row.dataset.route] = span ? [span.textContent, span.className, span.title] : null; }"
            "return out;", column)
        for route_id in ("inventory-read", "order-read", "tracking-by-order"):
            check(shown.get(route_id) is not None, f"{route_id} has a coverage cell: {shown.get(route_id)!r}")
            label, classes, title = shown[route_id]
            check(label == "complete" and "warn" not in classes, f"{route_id} shows its coverage as complete, quietly: {label!r} ({classes!r})")
            check(title.startswith("evidence covers "), f"{route_id}'s coverage tooltip states the span: {title!r}")

        # Refreshes without reloading the page: a marker set now survives the next refresh.
        driver.execute_script("window.__stillThisPage = true;")
        before = int(driver.find_element(By.ID, "updated").get_attribute("data-refreshes"))
        WebDriverWait(driver, 20).until(lambda d: int(d.find_element(By.ID, "updated").get_attribute("data-refreshes")) > before)
        check(driver.execute_script("return window.__stillThisPage === true;"), "the table refreshed without a page reload")
        after = int(driver.find_element(By.CSS_SELECTOR, "#routes tbody tr[data-route='inventory-read'] td:nth-child(5)").text)
        check(after >= int(cells[4]), f"samples moved on with the refresh ({cells[4]} → {after})")

        # A click leads to the route's top differences and examples, side by side.
        driver.find_element(By.CSS_SELECTOR, "#routes tbody tr[data-route='inventory-read']").click()
        wait.until(EC.visibility_of_element_located((By.ID, "detail")))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#differences tbody tr")) > 0)
        pointers = [row.find_element(By.TAG_NAME, "code").text for row in driver.find_elements(By.CSS_SELECTOR, "#differences tbody tr")]
        check("/totalOnHand" in pointers, f"the detail lists the top differing pointers: {pointers}")
        examples = driver.find_elements(By.CSS_SELECTOR, "#examples tbody tr")
        check(len(examples) >= 3, f"examples are shown ({len(examples)})")
        first = examples[0]
        legacy = first.find_element(By.CSS_SELECTOR, "td.legacy code").text
        service = first.find_element(By.CSS_SELECTOR, "td.service code").text
        check(legacy and service and first.find_element(By.CSS_SELECTOR, "td.legacy").location["x"] < first.find_element(By.CSS_SELECTOR, "td.service").location["x"],
              f"legacy and service values side by side: {legacy!r} | {service!r}")
        # The detail states the coverage in the gate's words, with no gaps to list.
        wait.until(lambda d: d.find_element(By.ID, "detail-coverage").text)
        line, gate_check, gaps = driver.execute_script(
            "const gate = [...document.querySelectorAll('#detail-gate li')].map((li) => li.textContent).find((t) => t.includes(' coverage: '));"
            "return [document.getElementById('detail-coverage').textContent, gate || '', document.querySelectorAll('#detail-coverage-gaps li').length];")
        check(line.startswith("Coverage complete: evidence covers "), f"the detail states the route's coverage: {line!r}")
        phrase = gate_check.split(" coverage: ", 1)[-1].rsplit(" (gate ", 1)[0]
        check(phrase.startswith("evidence covers ") and phrase in line, f"the coverage line matches the gate's coverage check: {line!r} vs {gate_check!r}")
        check(gaps == 0, f"a complete route lists no gaps ({gaps})")
        check("selected" in driver.find_element(By.CSS_SELECTOR, "#routes tbody tr[data-route='inventory-read']").get_attribute("class"), "the clicked route is highlighted")
        driver.save_screenshot(os.path.join(args.artifacts, "dashboard.png"))
        print(f"screenshot: {os.path.join(args.artifacts, 'dashboard.png')}")

        # 3. The HTML report opens on its own, with working charts.
        driver.get("file://" + os.path.join(args.artifacts, "report.html"))
        charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
        check(len(charts) >= 2 * len(report["routes"]), f"the HTML report has a match-rate and a latency chart per route ({len(charts)})")
        lines = driver.find_elements(By.CSS_SELECTOR, "#route-inventory-read svg.chart polyline.series")
        check(len(lines) == 3, f"inventory-read has a match-rate line and a latency line per side ({len(lines)})")
        points = [len(line.get_attribute("points").split()) for line in lines]
        widths = [line.size["width"] for line in lines]
        check(min(points) >= 3 and min(widths) > 50, f"the lines span the time axis: points {points}, rendered widths {widths}")
        check(driver.execute_script("return performance.getEntriesByType('resource').length") == 0, "the HTML report loads no external asset")
        driver.save_screenshot(os.path.join(args.artifacts, "report.png"))
        print("browser test passed")
    finally:
        if driver:
            driver.quit()
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
