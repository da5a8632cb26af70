"""End to end in a real browser: Debian's Chromium driven by Playwright against `fairpriv app`.

Skips (with the reason) where Chromium is absent; `.ci/run` installs it. Saves a screenshot
of the results page to test-artifacts/results-page.png.
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


def test_upload_run_and_download_the_pdf(server: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader

    rng = np.random.default_rng(0)
    n = 1200
    x = rng.normal(size=(n, 2))
    data = write_csv(tmp_path / "people.csv", pd.DataFrame({
        "x0": x[:, 0], "x1": x[:, 1], "sex": rng.choice(["F", "M"], n),
        "y": (x[:, 0] + rng.normal(0, 1, n) > 0).astype(int)}))
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(60_000)
    page.goto(server)
    page.get_by_text("Bring a table").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text("1200 rows, 4 columns").wait_for()
    page.get_by_role("button", name="Use this data").click()
    page.get_by_text("Ready: 1200 rows").wait_for()

    page.get_by_role("link", name="2. Setup").click()
    for label, value in (("Seeds", "1"), ("Epochs", "40"), ("Canaries (0 = no one-run audit)", "100")):
        box = page.get_by_label(label)
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(400)
    hidden = page.get_by_label("Hidden layers (e.g. 64,32; empty = linear)")
    hidden.fill("8")
    hidden.press("Enter")
    page.get_by_text("Settings saved").wait_for()

    page.get_by_role("link", name="3. Run").click()
    page.get_by_role("button", name="Run audit").click()
    page.get_by_text("Audit finished").wait_for(timeout=180_000)
    assert page.locator("[data-testid=stException]").count() == 0

    page.get_by_role("link", name="4. Results").click()
    page.get_by_text("Error by group").wait_for()
    page.wait_for_timeout(1500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "results-page.png"), full_page=True)

    page.get_by_role("link", name="5. Report").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download PDF report").click()
    pdf = tmp_path / "report.pdf"
    info.value.save_as(str(pdf))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = " ".join(p.extract_text() or "" for p in PdfReader(str(pdf)).pages)
    for section in ("Audit overview", "Findings", "Fairness", "Privacy", "Assumptions and limits"):
        assert section in text
    page.close()


def test_predictions_page_in_the_browser(server: str, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 2, n)
    score = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.2, n), 0, 1)
    data = write_csv(tmp_path / "preds.csv", pd.DataFrame({
        "y_true": y, "y_pred": (score >= 0.5).astype(int), "y_score": score,
        "member": rng.integers(0, 2, n), "grp": rng.choice(["a", "b"], n)}))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(server)
    page.get_by_role("link", name="Audit an existing model").click()
    page.get_by_text("Nothing is trained").wait_for()
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_role("button", name="Audit predictions").click()
    page.get_by_text("Done: see Results and Report.").wait_for()
    assert page.locator("[data-testid=stException]").count() == 0
    page.close()
