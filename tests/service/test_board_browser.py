"""The board in a real browser (headless Chromium through chromedriver): it reloads itself, and a
case sealed from the command line shows up sealed without any watcher running (issue 14)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from helpers import write_case
from watchkit import Service, document_text, grievance_letter, wait_for

from packet.config import load_config
from packet.service.board import write_board

CASE = "IMR-2026-000900"


def _cli(service: Service, *args: str) -> subprocess.CompletedProcess:
    command, rest = args[0], args[1:]
    return subprocess.run([sys.executable, "-m", "packet.cli", command, "--config", str(service.config_file), *rest],
                          capture_output=True, text=True, timeout=600, cwd=service.root)


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("chromium and chromium-driver are not installed (make setup installs them as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _row_text(driver, case_id: str) -> str | None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:  # (the page may be reloading under us)
        return driver.find_element(By.ID, f"case-{case_id}").text
    except WebDriverException:
        return None


def _generated(driver) -> str | None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.CSS_SELECTOR, 'meta[name="generated"]').get_attribute("content")
    except WebDriverException:
        return None


def test_an_open_board_reloads_itself_and_shows_a_case_sealed_from_the_command_line(tmp_path, browser):
    service = Service(tmp_path)
    for folder in (service.outbox, service.archive, service.state):  # as `imr-packet watch` made them
        folder.mkdir(exist_ok=True)
    case_dir = write_case(service.inbox, CASE)
    (case_dir / "correspondence").mkdir(exist_ok=True)
    (case_dir / "correspondence" / "grievance letter.txt").write_text(grievance_letter(CASE))
    for number in range(1, 4):
        (case_dir / "medical-records").mkdir(exist_ok=True)
        (case_dir / "medical-records" / f"visit {number}.txt").write_text(document_text(CASE, number))
    built = _cli(service, "build", str(case_dir))
    assert built.returncode == 0, built.stderr
    index = service.outbox / "index.html"
    assert index.is_file(), "build did not refresh the board"
    assert "ready" in index.read_text()

    # The page a supervisor has open: it reloads itself (every 2 s here; 60 s by default).
    config = load_config(service.config_file)
    write_board(config, refresh_seconds=2)
    browser.get(index.resolve().as_uri())
    first = _generated(browser)
    row = _row_text(browser, CASE)
    assert first and row and "ready" in row and "sealed" not in row
    assert "draft ready" in row  # the case's _STATUS.txt headline, linked

    sealed = _cli(service, "seal", CASE)
    assert sealed.returncode == 0, sealed.stderr
    # No watcher runs: the command itself rewrote the board, and the open page reloaded by itself.
    wait_for(lambda: "Submission 01" in (_row_text(browser, CASE) or ""), timeout=90,
             what="the open board to show the case sealed")
    assert _generated(browser) != first
    row = _row_text(browser, CASE)
    assert "sealed" in row and "submission 1 is sealed" in row
    from selenium.webdriver.common.by import By

    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, f"#case-{CASE} a")]
    assert any(href.endswith(f"/inbox/{CASE}/_STATUS.txt") for href in links), links
