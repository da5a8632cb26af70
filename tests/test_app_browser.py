"""End to end in a real browser: Debian's Chromium driven by Playwright against `fairpriv app`.

Skips (with the reason) where Chromium is absent; `.ci/run` installs it. Saves screenshots
of every page after an audit of UCI Adult to test-artifacts/page-*.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Chromium not installed (apt-get install chromium; .ci/run does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fairpriv_cli", "app", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the app did not start within 60 s")
    yield url
    proc.terminate()  # SIGTERM, as a service manager would stop it
    proc.wait(timeout=20)
    # Nothing may be left serving: `fairpriv app` must not leave a Streamlit child behind.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"a server still listens on port {port}"


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def new_page(browser, server: str, **options):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, **options)
    page.set_default_timeout(60_000)
    page.goto(server)
    page.get_by_text("What fairpriv does").wait_for()
    return page


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the page's script run is over: while it runs, Streamlit keeps the
    previous run's elements (marked stale) beside the new ones."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-stale=true]') && "
                           "!document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)


def go(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("link", name=name).click()
    page.get_by_role("heading", name=name).wait_for()
    settle(page)


def fill(page, label: str, value: str) -> None:  # type: ignore[no-untyped-def]
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    settle(page)


def tick(page, label: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stCheckbox").filter(has_text=label).locator("label").click()
    settle(page)


def quick_settings(page, epochs: str = "2") -> None:  # type: ignore[no-untyped-def]
    go(page, "2. Setup")
    for label, value in (("Seeds", "1"), ("Epochs", epochs), ("Canaries (0 = no one-run audit)", "100"),
                         ("Hidden layers (e.g. 64,32; empty = linear)", "8")):
        fill(page, label, value)


def no_exception(page) -> None:  # type: ignore[no-untyped-def]
    assert page.locator("[data-testid=stException]").count() == 0


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole page: Streamlit scrolls inside its own container, so the viewport is made
    as tall as the page's content first."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1000)  # images and tables settle
    height = page.evaluate(
        "(() => { const b = document.querySelector('[data-testid=stMainBlockContainer]');"
        " return b ? b.getBoundingClientRect().top + b.scrollHeight + 80 : 1000; })()")
    page.set_viewport_size({"width": 1400, "height": int(min(max(height, 1000), 16_000))})
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_compas_small_groups_are_merged_on_the_data_page_then_run_and_report(  # type: ignore[no-untyped-def]
        server: str, browser, tmp_path: Path) -> None:
    from compas_like import compas_like
    from pdf_checks import assert_pdf_sound
    from pypdf import PdfReader

    data = write_csv(tmp_path / "compas.csv", compas_like(scale=0.3))
    page = new_page(browser, server, accept_downloads=True)
    go(page, "1. Data")
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text("compas.csv: 2,198 rows, 9 columns").wait_for()
    # Group by race instead of the guessed sex.
    page.get_by_role("button", name="Remove sex").click()
    page.get_by_role("button", name="Remove sex").wait_for(state="detached")
    settle(page)
    box = page.get_by_test_id("stMultiSelect").locator("input")
    box.click()
    box.fill("race")
    box.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Remove race").wait_for()
    settle(page)
    page.get_by_text("'Native American' (18 rows)").wait_for()
    assert page.get_by_role("button", name="Use this data").is_disabled()
    tick(page, "Merge small groups")
    page.get_by_role("button", name="Use minimum 10 and merge").click()
    page.get_by_text("is 'Asian', 'Native American' together").wait_for()
    page.get_by_role("button", name="Use this data").click()
    page.get_by_text("Ready: 2,198 rows of compas.csv").wait_for()
    quick_settings(page)
    go(page, "3. Run")
    page.get_by_role("button", name="Run audit").click()
    page.get_by_text("finished in").wait_for(timeout=240_000)
    no_exception(page)
    go(page, "5. Report")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download PDF report").click()
    pdf = tmp_path / "report.pdf"
    info.value.save_as(str(pdf))
    assert info.value.suggested_filename == "compas-report.pdf"
    assert_pdf_sound(pdf)
    text = " ".join(p.extract_text() or "" for p in PdfReader(str(pdf)).pages)
    assert "other (merged)" in text and "compas.csv" in text
    # Downloads clicked in quick succession all arrive (a rerun used to cancel the one in flight).
    downloads = []
    for label in ("Download HTML report", "Download results.json", "Download PDF report"):
        with page.expect_download() as info:
            page.get_by_role("button", name=label).click()
        downloads.append(info.value)
    for download in downloads:
        assert download.failure() is None, (download.suggested_filename, download.failure())
        assert Path(download.path()).stat().st_size > 1000, download.suggested_filename
    page.close()


def test_settings_hold_across_pages_and_run_uses_them(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    page.get_by_role("button", name="Use the demo data").click()
    page.get_by_text("The demo data is ready").wait_for()
    quick_settings(page, epochs="3")
    page.get_by_role("button", name="Remove group_dropout").click()
    page.get_by_role("button", name="Remove group_dropout").wait_for(state="detached")
    settle(page)
    go(page, "3. Run")
    page.get_by_text("arms: baseline, uniform_dropout, dp_sgd; 1 seed(s), 3 epochs").wait_for()
    go(page, "1. Data")
    go(page, "2. Setup")
    assert page.get_by_label("Seeds", exact=True).input_value() == "1"
    assert page.get_by_label("Epochs", exact=True).input_value() == "3"
    assert page.get_by_role("button", name="Remove group_dropout").count() == 0
    go(page, "3. Run")
    page.get_by_text("1 seed(s), 3 epochs").wait_for()
    no_exception(page)
    page.close()


def test_a_run_goes_on_while_the_user_looks_elsewhere_and_can_be_stopped(  # type: ignore[no-untyped-def]
        server: str, browser) -> None:
    page = new_page(browser, server)
    page.get_by_role("button", name="Use the demo data").click()
    page.get_by_text("The demo data is ready").wait_for()
    quick_settings(page, epochs="4")
    # Widgets drawn only once the box is ticked: Streamlit kept an older value of theirs
    # (the default) that a fragment rerun brought back.
    tick(page, "Measure missing features")
    fill(page, "Missing rates p_test for every group", "0.1,0.3")
    fill(page, "Training dropout rates p_train", "")
    go(page, "3. Run")
    page.get_by_role("button", name="Run audit").click()
    page.get_by_text("It keeps running while you look at other pages").wait_for()
    go(page, "4. Results")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("running for").wait_for()  # the progress follows the user
    # The panel's once-a-second reruns (two at least) must not reset Setup meanwhile.
    page.wait_for_timeout(2500)
    go(page, "2. Setup")
    assert page.get_by_label("Epochs", exact=True).input_value() == "4"
    assert page.get_by_label("Seeds", exact=True).input_value() == "1"
    assert page.get_by_label("Missing rates p_test for every group", exact=True).input_value() == "0.1,0.3"
    assert page.get_by_label("Training dropout rates p_train", exact=True).input_value() == ""
    go(page, "4. Results")
    sidebar.get_by_text("finished in").wait_for(timeout=240_000)
    page.get_by_text("What the audit found").wait_for()  # the page shows the results unasked
    no_exception(page)
    go(page, "2. Setup")  # and still after the run
    assert page.get_by_label("Missing rates p_test for every group", exact=True).input_value() == "0.1,0.3"
    tick(page, "Measure missing features")  # off again for the stopped run below
    # A longer run, stopped: the page says so.
    go(page, "2. Setup")
    fill(page, "Epochs", "30")
    go(page, "3. Run")
    page.get_by_role("button", name="Run audit").click()
    page.get_by_role("button", name="Stop the audit").click()
    page.get_by_text("was stopped by you after").wait_for(timeout=120_000)
    no_exception(page)
    page.close()


def test_a_failed_run_shows_its_reason_without_a_click(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, server)
    page.get_by_role("button", name="Use the demo data").click()
    page.get_by_text("The demo data is ready").wait_for()
    quick_settings(page)
    fill(page, "DP-SGD delta (empty: min(1e-5, 1/(10 n)))", "0.01")
    go(page, "3. Run")
    page.get_by_role("button", name="Run audit").click()
    page.get_by_text("failed: arm 'dp_sgd': delta 0.01 is not below 1/(training rows)").wait_for()
    assert page.get_by_text("'DP-SGD delta'").first.is_visible()
    no_exception(page)
    page.close()


def test_every_page_after_a_run_on_adult(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    """Screenshots of every page after an audit of UCI Adult, saved to test-artifacts/."""
    adult = Path(__file__).resolve().parents[2] / "shared" / "data" / "adult.data"
    if not adult.exists():
        pytest.skip(f"{adult} not present")
    page = new_page(browser, server)
    shot(page, "page-0-start")
    go(page, "1. Data")
    page.get_by_text("UCI Adult (a file on the server)").click()
    fill(page, "Path of adult.data on the server", str(adult))
    page.get_by_text("adult.data: 32,561 rows").wait_for()
    page.get_by_role("button", name="Use this data").click()
    page.get_by_text("Ready: ").wait_for()
    shot(page, "page-1-data")
    # A small audit of every arm (screenshots need every section, not the full audit's power).
    quick_settings(page, epochs="2")
    page.get_by_text("This audit trains").wait_for()
    shot(page, "page-2-setup")
    go(page, "3. Run")
    page.get_by_role("button", name="Run audit").click()
    page.get_by_text("It keeps running").wait_for()
    page.wait_for_timeout(5000)
    shot(page, "page-3-run-running")
    page.get_by_text("finished in").wait_for(timeout=300_000)
    shot(page, "page-3-run-finished")
    go(page, "4. Results")
    page.get_by_text("What the audit found").wait_for()
    shot(page, "page-4-results")
    go(page, "5. Report")
    page.get_by_text("Preview").wait_for()
    page.wait_for_timeout(2000)
    shot(page, "page-5-report")
    no_exception(page)
    page.close()


def test_predictions_page_in_the_browser(server: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 2, n)
    score = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.2, n), 0, 1)
    data = write_csv(tmp_path / "preds.data", pd.DataFrame({
        "y_true": y, "y_pred": (score >= 0.5).astype(int), "y_score": score,
        "member": rng.integers(0, 2, n), "grp": rng.choice(["a", "b"], n)}))
    page = new_page(browser, server)
    page.get_by_role("link", name="Audit an existing model").click()
    page.get_by_text("Nothing is trained").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(data))  # a .data file, as on Data
    page.get_by_role("button", name="Audit predictions").click()
    page.get_by_text("Done: see Results and Report.").wait_for()
    shot(page, "page-6-existing-model")
    go(page, "4. Results")
    page.get_by_text("What the audit found").wait_for()
    no_exception(page)
    page.close()
