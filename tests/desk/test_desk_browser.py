"""The desk in real Chromium: a clerk resolves the queue, the watcher rebuilds, a supervisor seals.

Screenshots of the queue and an item page are kept under the test's folder (and copied to
$DESK_SCREENSHOTS when set) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from deskkit import CASE_ID, PASSWORD, desk_case

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="Debian chromium and chromium-driver are needed")


def wait_for(condition, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chrome'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def running(tmp_path):
    """The built case, the desk on a free port, and the watcher rebuilding on decisions."""
    from packet.desk.serve import make_server, run_until_closed

    root = tmp_path / "site"
    config, case_dir = desk_case(root)
    config_file = root / "imr.toml"
    lines = ["[paths]"] + [f'{k} = "{getattr(config.paths, k)}"' for k in ("inbox", "outbox", "archive", "state")]
    lines += ["[watch]", "settle_seconds = 0.5", "debounce_seconds = 0.5", "rescan_seconds = 2"]
    config_file.write_text("\n".join(lines) + "\n")
    watcher_log = open(root / "watch.out", "wb")
    watcher = subprocess.Popen([sys.executable, "-m", "packet.cli", "watch", "--config", str(config_file)],
                               stdout=watcher_log, stderr=subprocess.STDOUT, cwd=root)
    server = make_server(config, listen="127.0.0.1:0")
    thread = threading.Thread(target=run_until_closed, args=(server,), daemon=True)
    thread.start()
    try:
        yield config, case_dir, f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        watcher.terminate()
        watcher.wait(timeout=30)
        watcher_log.close()


def draft_documents(config) -> dict[str, dict]:
    path = config.paths.outbox / CASE_ID / "draft" / "manifest.json"
    try:
        return {d["source"]: d for d in json.loads(path.read_text())["documents"]}
    except (OSError, ValueError, KeyError):
        return {}


def sign_in(driver, base, name):
    from selenium.webdriver.common.by import By

    driver.get(base + "/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "signin").click()
    wait_for(lambda: "Review queue" in driver.title, timeout=20, what="the queue after sign-in")


def open_item(driver, base, code, title_part):
    from selenium.webdriver.common.by import By

    driver.get(base + "/queue")
    for row in driver.find_elements(By.CSS_SELECTOR, "tr.item"):
        if row.get_attribute("data-code") == code and title_part in row.text:
            row.find_element(By.CSS_SELECTOR, "a.open").click()
            return
    raise AssertionError(f"no {code} item for {title_part} in the queue:\n{driver.page_source[:3000]}")


def decide(driver, form_id, **fields):
    from selenium.webdriver.common.by import By

    form = driver.find_element(By.ID, form_id)
    for name, value in fields.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            from selenium.webdriver.support.ui import Select

            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait_for(lambda: driver.find_elements(By.ID, "done") or driver.find_elements(By.ID, "error"),
             timeout=20, what="the decision to be recorded")
    assert not driver.find_elements(By.ID, "error"), driver.find_element(By.ID, "error").text


def test_a_clerk_resolves_the_queue_and_a_supervisor_seals(running, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from packet.records import audit

    config, case_dir, base = running
    shots = tmp_path / "screenshots"
    shots.mkdir()
    sign_in(browser, base, "clara")
    browser.get(base + "/queue")
    browser.save_screenshot(str(shots / "queue.png"))
    codes = [row.get_attribute("data-code") for row in browser.find_elements(By.CSS_SELECTOR, "tr.item")]
    assert "needs_review" in codes and "identity_mismatch" in codes, codes

    open_item(browser, base, "identity_mismatch", "Lab")
    assert "another person named" in browser.page_source
    browser.save_screenshot(str(shots / "item-identity.png"))
    images = browser.find_elements(By.CSS_SELECTOR, ".pages img")
    assert images and all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
    decide(browser, "decide-exclude", value="Page 2 is another patient's lab result")

    open_item(browser, base, "needs_review", "")
    decide(browser, "decide-category", value="correspondence")
    decide(browser, "decide-withhold", value="Contains the member's psychotherapy details; withheld under H&S 123115")

    wait_for(lambda: (draft_documents(config).get("medical-records/Lab panel.pdf", {}).get("excluded")
                      and draft_documents(config).get("misc scan 7.pdf", {}).get("category") == "correspondence"
                      and draft_documents(config).get("misc scan 7.pdf", {}).get("withheld_from_member")),
             timeout=120, what="the watcher to rebuild the draft with the decisions")
    browser.get(base + "/queue")
    codes = [row.get_attribute("data-code") for row in browser.find_elements(By.CSS_SELECTOR, "tr.item")]
    assert "needs_review" not in codes and "identity_mismatch" not in codes, codes
    wait_for(lambda: "exclude by clara" in (case_dir / "_STATUS.txt").read_text(encoding="utf-8"), timeout=60,
             what="_STATUS.txt to name the clerk's decisions")
    board = config.paths.outbox / "_board" / f"{CASE_ID}.html"
    wait_for(lambda: board.is_file() and "clara" in board.read_text(encoding="utf-8"), timeout=60,
             what="the board to show the clerk's decisions")

    browser.find_element(By.CSS_SELECTOR, "header form button").click()
    sign_in(browser, base, "sam")
    browser.get(f"{base}/case/{CASE_ID}")
    browser.find_element(By.ID, "seal").click()
    message = wait_for(lambda: browser.find_elements(By.ID, "message"), timeout=120, what="the seal")[0].text
    assert message.startswith("Sealed"), message
    assert (config.paths.outbox / CASE_ID / "submission-01" / "manifest.json").is_file()

    events = [e for e in audit.iter_entries(config) if e.get("case") == CASE_ID]
    decided = [(e["event"], e.get("decision"), e["actor"]) for e in events if e["event"] == "override_added"]
    assert ("override_added", "exclude", "clara") in decided
    assert ("override_added", "category", "clara") in decided
    assert ("override_added", "withhold_from_member", "clara") in decided
    assert any(e["event"] == "sealed" and e["actor"] == "sam" for e in events)
    member = config.paths.outbox / CASE_ID / "submission-01" / "member-packet.pdf"
    text = subprocess.run(["pdftotext", str(member), "-"], capture_output=True, text=True).stdout
    assert "REACTIVE" not in text and "CHEN" not in text
    target = os.environ.get("DESK_SCREENSHOTS")
    if target:
        shutil.copytree(shots, target, dirs_exist_ok=True)


def test_a_clerk_removes_only_the_other_persons_page_and_the_case_seals_without_it(running, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from packet.records import audit

    config, case_dir, base = running
    sign_in(browser, base, "clara")
    open_item(browser, base, "identity_mismatch", "Lab")
    form = browser.find_element(By.ID, "decide-remove-foreign")
    assert form.find_element(By.NAME, "pages").get_attribute("value") == "2"
    browser.save_screenshot(str(tmp_path / "item-remove-pages.png"))
    decide(browser, "decide-remove-foreign")  # one click: the pages and a neutral reason are filled in
    open_item(browser, base, "needs_review", "")
    decide(browser, "decide-category", value="correspondence")
    wait_for(lambda: (draft_documents(config).get("medical-records/Lab panel.pdf", {}).get("removed_pages") == [2]
                      and draft_documents(config).get("misc scan 7.pdf", {}).get("category") == "correspondence"),
             timeout=120, what="the watcher to rebuild the draft without page 2")
    lab = draft_documents(config)["medical-records/Lab panel.pdf"]
    assert lab["pages"] == 1 and lab["identity"] == "confirmed" and lab["removed_by"] == "clara"
    browser.get(base + "/queue")
    codes = [row.get_attribute("data-code") for row in browser.find_elements(By.CSS_SELECTOR, "tr.item")]
    assert "identity_mismatch" not in codes, codes
    wait_for(lambda: "1 page(s) removed by a person (clara)" in (case_dir / "_STATUS.txt").read_text(encoding="utf-8"),
             timeout=60, what="_STATUS.txt to say a page was removed and by whom")

    browser.find_element(By.CSS_SELECTOR, "header form button").click()
    sign_in(browser, base, "sam")
    browser.get(f"{base}/case/{CASE_ID}")
    browser.find_element(By.ID, "seal").click()
    message = wait_for(lambda: browser.find_elements(By.ID, "message"), timeout=120, what="the seal")[0].text
    assert message.startswith("Sealed"), message
    submission = config.paths.outbox / CASE_ID / "submission-01"
    for name in ("imr-org-packet.pdf", "member-packet.pdf", "provider-packet.pdf"):
        text = subprocess.run(["pdftotext", str(submission / name), "-"], capture_output=True, text=True).stdout
        assert "REACTIVE" not in text and "CHEN" not in text and "M111222333" not in text, name
    decided = [(e.get("decision"), e["actor"]) for e in audit.iter_entries(config) if e["event"] == "override_added"]
    assert ("exclude_pages", "clara") in decided and ("exclude", "clara") in decided
