"""The web page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest

from pipeline.serve.api import serve
from tests.support.api import KEY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: .ci/run installs them (.ci/apt-packages.txt)")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for CSP reports
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_page_shows_cameras_persons_and_a_timeline(site_app, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    server, thread, port = serve(site_app, "127.0.0.1", 0)
    try:
        browser.get(f"http://127.0.0.1:{port}/#key={KEY}")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "yes")
        assert "cam0: streaming" in browser.find_element(By.ID, "cameras").text
        people = browser.find_elements(By.CSS_SELECTOR, "#persons li")
        assert len(people) == 3
        people[0].click()
        wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#timeline img")))
        wait.until(
            lambda d: all(i.get_property("naturalWidth") > 0 for i in d.find_elements(By.CSS_SELECTOR, "#timeline img"))
        )
        lanes = browser.find_elements(By.CSS_SELECTOR, "#timeline .lane b")
        assert [lane.text for lane in lanes] == ["cam0", "cam1"]
        shot = tmp_path / "web-page.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        # a wrong key shows the API's message rather than an empty page
        browser.execute_script("localStorage.clear()")
        browser.get("about:blank")
        browser.get(f"http://127.0.0.1:{port}/#key=wrong")
        wait.until(lambda d: "API key" in d.find_element(By.ID, "error").text)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# markup an attacker with write access to Redis (or data from an older version) could leave in an id
HOSTILE_CAMERA = "<img src=x onerror=\"window.pwned='camera';document.title='pwned'\">"
HOSTILE_STATE = "<img src=x onerror=\"window.pwned='state'\">"
HOSTILE_SIGHTING = '"><img src=x onerror="window.pwned=\'sighting\'">:7:0'


def plant_hostile_person(client, keys) -> None:
    """A camera and a person whose ids are markup, written straight into Redis as the store lays them out."""
    client.sadd(keys.cameras, HOSTILE_CAMERA)
    client.hset(keys.camera(HOSTILE_CAMERA), mapping={"state": HOSTILE_STATE, "heartbeat": "1", "error": ""})
    person = 999
    client.zadd(keys.identities, {str(person): 10_000.0})
    client.hset(
        keys.identity(person),
        mapping={
            "first_seen": "9990.0",
            "last_seen": "9995.0",
            "sightings": "1",
            "thumb": HOSTILE_SIGHTING,
            "recent": json.dumps([[HOSTILE_CAMERA, 7, 9990.0, 9995.0]]),
        },
    )
    client.zadd(keys.sightings(person), {HOSTILE_SIGHTING: 9990.0})
    client.hset(
        keys.sighting(HOSTILE_SIGHTING),
        mapping={
            "identity": str(person),
            "camera": HOSTILE_CAMERA,
            "track": "7",
            "seq": "0",
            "t_start": "9990.0",
            "t_end": "9995.0",
            "decision": "new",
            "score": "",
        },
    )


def test_ids_that_are_markup_show_as_text_and_run_nothing(site_app, redis_client, bus_keys, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    plant_hostile_person(redis_client, bus_keys)
    server, thread, port = serve(site_app, "127.0.0.1", 0)
    try:
        page = httpx.get(f"http://127.0.0.1:{port}/")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "object-src 'none'" in csp
        browser.get(f"http://127.0.0.1:{port}/#key={KEY}")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "yes")
        cameras = browser.find_element(By.ID, "cameras").text
        assert f"{HOSTILE_CAMERA}: {HOSTILE_STATE}" in cameras and "cam0: streaming" in cameras
        people = browser.find_elements(By.CSS_SELECTOR, "#persons li")
        assert people[0].text == f"person 999: 1 sightings on {HOSTILE_CAMERA}"
        people[0].click()
        wait.until(ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#timeline .lane")))
        assert [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#timeline .lane b")] == [HOSTILE_CAMERA]
        images = browser.find_elements(By.CSS_SELECTOR, "#timeline img")
        assert len(images) == 1 and images[0].get_attribute("alt") == HOSTILE_SIGHTING
        assert browser.find_elements(By.CSS_SELECTOR, "#cameras img, #persons img") == []
        # nothing the ids carried ran: no flag, the title untouched
        assert browser.execute_script("return window.pwned === undefined")
        assert browser.title == "crosscam"
        # and the page's own script and style ran under the policy without a violation
        assert browser.execute_script("return getComputedStyle(document.getElementById('error')).color") == (
            "rgb(187, 0, 0)"
        )
        violations = [e["message"] for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
        assert violations == []
    finally:
        server.should_exit = True
        thread.join(timeout=10)
