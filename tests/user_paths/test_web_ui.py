"""The web UI in a real browser over a demo'd state: `make ui` (dagster dev: webserver and daemon) on a free
port, driven by Playwright with Debian's Chromium (never a browser download).

What a user sees is checked, and each step leaves a screenshot in the folder the test prints:
the asset graph with its groups, one asset materialized from the UI with its run succeeding and its
checks run with it, the checks tab with results, and the Automation page with the sensors and schedules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from sophia_dagster.definitions import defs
from tests.conftest import REPO, DemoRun
from tests.user_paths.servers import free_port, serving

# Starting the UI, a run launched from it and the browser take minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(900)
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "web-ui"
ASSET = "snowflake/sophia/raw/deals"  # a raw table: its materialization runs the warehouse task and its health check
TIMEOUT_MS = 180_000  # generous: a loaded 2-core machine makes the first GraphQL answers slow


@dataclass(frozen=True)
class Expected:
    """What the definitions say the UI must show."""

    groups: list[str]
    sensors: list[str]
    schedules: list[str]


def expected() -> Expected:
    loaded = defs()
    graph = loaded.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.materializable_asset_keys}
    return Expected(
        groups=sorted(groups),
        sensors=sorted(sensor.name for sensor in loaded.sensors or []),
        schedules=sorted(schedule.name for schedule in loaded.schedules or []),
    )


@pytest.fixture
def page() -> Iterator[Page]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: apt-get install -y chromium (.ci/run does it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        yield context.new_page()
        browser.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_the_web_ui_in_a_real_browser(demo_run: DemoRun, page: Page, tmp_path: Path) -> None:
    assert demo_run.result.returncode == 0, demo_run.result.stderr[-3_000:]
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the web UI: {SHOTS}")
    want = expected()
    port = free_port()
    command = ["make", "-s", "ui", f"PORT={port}", f"DAGSTER_HOME={demo_run.dagster_home}"]
    with serving(command, REPO, demo_run.env, port, tmp_path / "make-ui.log") as url:
        first_visit_dialog(page, url)
        asset_graph_with_groups(page, url, want.groups)
        materialize_from_the_ui(page, url)
        checks_tab_with_results(page, url)
        automation_page(page, url, want)


def first_visit_dialog(page: Page, url: str) -> None:
    """A fresh instance greets the first visitor with a dialog; skipping it leaves the UI usable."""
    page.goto(f"{url}/asset-groups", timeout=TIMEOUT_MS)
    skip = page.get_by_role("button", name="Skip")
    expect(skip).to_be_visible()
    _shot(page, "0-first-visit-dialog")
    skip.click()
    expect(skip).to_be_hidden()


def asset_graph_with_groups(page: Page, url: str, groups: list[str]) -> None:
    """The global lineage shows one box per asset group of the definitions."""
    page.goto(f"{url}/asset-groups", timeout=TIMEOUT_MS)
    graph = page.locator("[data-testid='asset-graph'], svg").first
    expect(graph).to_be_visible()
    for group in groups:
        expect(page.get_by_text(group, exact=True).last).to_be_visible()
    _shot(page, "1-asset-graph")


def materialize_from_the_ui(page: Page, url: str) -> None:
    """The asset page's Materialize button launches a run that the daemon runs to success."""
    page.goto(f"{url}/assets/{ASSET}", timeout=TIMEOUT_MS)
    page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).click()
    launched = page.locator("a[href*='/runs/']").filter(has_text=re.compile("View|run", re.IGNORECASE)).first
    expect(launched).to_be_visible()
    run_path = launched.get_attribute("href")
    _shot(page, "2-run-launched")
    page.goto(f"{url}{run_path}" if run_path.startswith("/") else run_path, timeout=TIMEOUT_MS)
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=2 * TIMEOUT_MS)
    _shot(page, "3-run-succeeded")


def checks_tab_with_results(page: Page, url: str) -> None:
    """The checks tab of the asset shows its health check with the result of the run above."""
    page.goto(f"{url}/assets/{ASSET}?view=checks", timeout=TIMEOUT_MS)
    expect(page.get_by_text("estuary_task_healthy").first).to_be_visible()
    expect(page.get_by_text("Not evaluated", exact=False)).to_have_count(0)
    expect(page.get_by_text(re.compile("^Passed$")).first).to_be_visible()
    _shot(page, "4-checks-tab")


def automation_page(page: Page, url: str, want: Expected) -> None:
    """The Automation page lists every sensor and schedule of the definitions."""
    page.goto(f"{url}/automation", timeout=TIMEOUT_MS)
    for name in [*want.sensors, *want.schedules]:
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    _shot(page, "5-automation")
