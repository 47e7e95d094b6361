"""report.html in a real browser: Debian's chromium, headless, driven by Playwright, opened from a
file:// URL with every network request refused. The page must say what happened in words on its
first screen, draw data in every plot, log no console error, zoom into the race, and carry the
fidelity, what-if and alert tables. Screenshots go to the test's tmp_path (printed on failure)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from procs import require_binary

from services.core.plans import LEGACY_ENDPOINT

pytestmark = pytest.mark.integration

playwright = pytest.importorskip("playwright.sync_api")

SEED = 2  # test_live_cascade.py's first seed: the session's shared run is reused
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# For every subplot of the night figure: its title and how many points (bars, markers, non-null y
# values) its traces drew, read from the live plotly graph div; and how many of its SVG paths have
# a shape (drawn, not just declared).
PLOTTED = """() => {
  const gd = document.getElementById('night');
  const rows = {};
  for (const t of gd._fullData) {
    const axis = (t.yaxis || 'y');
    const n = (t.type === 'bar' ? t.x : t.y).filter(v => v !== null && v !== undefined).length;
    rows[axis] = (rows[axis] || 0) + n;
  }
  const titles = gd._fullLayout.annotations.map(a => a.text);
  const drawn = [...gd.querySelectorAll('.subplot')].map(s => ({
    id: s.classList[1],
    paths: [...s.querySelectorAll('.scatterlayer path.js-line, .scatterlayer path.point, .barlayer path')]
             .filter(p => (p.getAttribute('d') || '').length > 4).length}));
  return {rows, titles, drawn, range: gd._fullLayout.xaxis.range};
}"""


@pytest.fixture(scope="module")
def report(live_run, tmp_path_factory):
    """The shared run's report, rebuilt as a user would with the what-if table: `racelab report DIR --what-if`."""
    run = live_run(SEED)
    done = subprocess.run([sys.executable, "-m", "services.lab.cli", "report", str(run.run_dir), "--what-if"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return run


@pytest.fixture
def page(tmp_path):
    chromium = require_binary("chromium", "chromium")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        refused: list[str] = []

        def offline(route):  # a report that needs the network is broken on a plane and in an incident
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()
        context.route("**/*", offline)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.racelab = {"errors": errors, "refused": refused, "out": tmp_path}
        yield page
        browser.close()


def test_the_report_explains_and_draws_the_night(report, page):
    out = page.racelab["out"]
    page.goto((report.run_dir / "report.html").as_uri())
    page.wait_for_selector("#night .main-svg")
    page.screenshot(path=str(out / "first-screen.png"))

    story = page.inner_text("#story")
    first_screen = page.evaluate("document.getElementById('story').getBoundingClientRect().top") < 900
    assert first_screen, "the story is not on the first screen"
    summary = report.summary
    if summary["regional_name_emptied"]:
        window = summary["empty_windows"][0]
        assert f"{LEGACY_ENDPOINT} answered empty from {window['from_pdt']}" in story, story
        assert ("got stuck" in story) == summary["enactors_stuck"], story
    assert "Against 2025" in story and "of the incident's moments happened in this run" in story, story
    assert "{" not in story, "the first screen shows raw JSON"

    plotted = page.evaluate(PLOTTED)
    assert len(plotted["titles"]) >= 6, plotted["titles"]
    assert plotted["rows"] and all(n > 0 for n in plotted["rows"].values()), \
        f"a plot without data: {plotted['rows']} ({plotted['titles']})"
    empty_frames = [d["id"] for d in plotted["drawn"] if d["paths"] == 0]
    assert not empty_frames, f"subplots drawn as empty frames: {empty_frames}"
    tick = page.locator("#night .xtick text").first.text_content()  # the axis reads simulated PDT, not UTC
    assert tick[:2] in {"23", "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12",
                        "13", "14", "15"}, tick

    for table in ("Fidelity: INCIDENT.md", "What if:", "Alerts"):
        assert page.locator("h2", has_text=table).count() == 1, f"no {table!r} table"
    rows = page.locator("table").first.locator("tr").count()
    assert rows >= 8, f"the fidelity table has {rows} rows"
    if summary["regional_name_emptied"]:
        assert page.locator("h2", has_text="in the order they fired").count() == 1, "no alert fired"
    assert not page.racelab["errors"], page.racelab["errors"]
    assert not page.racelab["refused"], f"the page asked the network for {page.racelab['refused'][:3]}"


def test_zooming_into_the_race(report, page):
    """Drag across the race's row: the shared axis narrows from the night to minutes, on every panel;
    then the button jumps to the race window (a few minutes before the deletion)."""
    out = page.racelab["out"]
    page.goto((report.run_dir / "report.html").as_uri())
    page.wait_for_selector("#night .main-svg")
    night = page.evaluate(PLOTTED)["range"]
    drag = page.locator("#night .xy .nsewdrag").first  # the race row's plot area
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.05, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.10, y, steps=8)
    page.mouse.up()
    page.wait_for_timeout(500)
    zoomed = page.evaluate(PLOTTED)["range"]
    span = lambda r: page.evaluate("r => new Date(r[1]) - new Date(r[0])", r)  # noqa: E731
    assert span(zoomed) < span(night) / 5, (night, zoomed)
    page.screenshot(path=str(out / "dragged.png"))

    page.get_by_text("the race", exact=True).click()
    page.wait_for_timeout(500)
    race = page.evaluate(PLOTTED)["range"]
    assert 60_000 <= span(race) <= 20 * 60_000, race
    page.locator("#night").screenshot(path=str(out / "the-race.png"))
    assert not page.racelab["errors"], page.racelab["errors"]
