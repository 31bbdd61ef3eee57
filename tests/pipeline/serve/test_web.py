"""The web page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import os
import shutil

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
