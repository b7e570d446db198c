"""The memory browser in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
selenium), against a real ``ai-memory serve`` with an API key: log in, search, follow a link to a memory, and
read as an agent that must not see bob's private memory.

Screenshots of the main pages are written to the test's temporary folder; with ``AI_MEMORY_UI_SCREENSHOTS=DIR``
they are copied there too (how docs/ui/ is made: ``AI_MEMORY_UI_SCREENSHOTS=docs/ui pytest -k browser``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.servers import ServerProcess
from tests.ui_seed import ALICE, SECRET_CONTENT, SECRET_TITLE, Seeded, seed

KEY = "browser-test-key"
#: The viewport of every screenshot (CSS pixels): wide enough for the tables, small enough for the README.
WIDTH, HEIGHT = 1100, 760


def _binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        reason = f"{name} is not installed (apt-get install chromium chromium-driver; .ci/run does)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(reason)  # CI installs it: there the browser test must run
        pytest.skip(reason)
    return found


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = _binary("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    # With both paths given, selenium starts them as they are: nothing is looked up or downloaded.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_binary("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path / "node", extra=["--api-key", KEY], env={"AI_MEMORY_EMBEDDER": "off"}).start()
    try:
        yield s
    finally:
        s.stop()


class Shots:
    """Screenshots of pages, kept in the test's folder and, when asked, copied to AI_MEMORY_UI_SCREENSHOTS."""

    def __init__(self, driver: WebDriver, folder: Path) -> None:
        self.driver = driver
        self.folder = folder
        self.wanted = os.environ.get("AI_MEMORY_UI_SCREENSHOTS")

    def take(self, name: str, *, height: int = HEIGHT) -> None:
        """The page's top ``height`` pixels."""
        self.driver.set_window_size(WIDTH, height)
        png = self.driver.get_screenshot_as_png()
        self.driver.set_window_size(WIDTH, HEIGHT)
        assert png.startswith(b"\x89PNG") and len(png) > 5000, name  # an image with something on it
        (self.folder / f"{name}.png").write_bytes(png)
        if self.wanted:
            Path(self.wanted).mkdir(parents=True, exist_ok=True)
            (Path(self.wanted) / f"{name}.png").write_bytes(png)


def click(driver: WebDriver, element: WebElement) -> None:
    """Click a link or button and wait for the next page (a click returns before the navigation it starts)."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    # While the page changes, chromedriver may answer a query with "unhandled inspector error": ask again.
    wait = WebDriverWait(driver, 10, ignored_exceptions=[WebDriverException])
    wait.until(staleness_of(old))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def _leaks(source: str, seeded: Seeded) -> list[str]:
    return [s for s in (SECRET_TITLE, SECRET_CONTENT, seeded.secret, "acme/eng/bob") if s in source]


async def test_browse_search_follow_and_read_as_an_agent(server: ServerProcess, browser: WebDriver,
                                                         tmp_path: Path) -> None:
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", headers={"x-api-key": KEY}, timeout=20) as api:
        seeded = await seed(api)
    shots = Shots(browser, tmp_path)
    b = browser

    b.get(f"{server.url}/ui")  # no key yet: the login form, which returns to the page asked for
    assert b.find_element(By.TAG_NAME, "h1").text == "API key"
    b.find_element(By.NAME, "api_key").send_keys(KEY)
    click(b, b.find_element(By.CSS_SELECTOR, "main form button"))
    assert b.find_element(By.TAG_NAME, "h1").text == "Search memories"
    assert "Deploy order" in b.find_element(By.TAG_NAME, "main").text  # the memories listed under the form

    b.find_element(By.NAME, "q").send_keys("migrations deploy")
    Select(b.find_element(By.NAME, "kind")).select_by_value("recall")
    click(b, b.find_element(By.CSS_SELECTOR, "form.search button"))
    assert "/ui/search?" in b.current_url
    scores = [float(e.text) for e in b.find_elements(By.CSS_SELECTOR, ".score")]
    assert scores and scores == sorted(scores, reverse=True)
    shots.take("search", height=540)

    click(b, b.find_element(By.LINK_TEXT, "Deploy order"))
    assert b.current_url.endswith(f"/ui/memories/{seeded.deploy}")
    main = b.find_element(By.TAG_NAME, "main").text
    assert "then roll out the app" in main and "Rollback plan" in main
    assert "memory.stored" in main and "link.created" in main and "memory.updated" in main and "verified" in main
    assert SECRET_TITLE in main  # the link bob made: without as_agent nothing is filtered, as in the API
    shots.take("memory", height=1250)

    click(b, b.find_element(By.LINK_TEXT, "Namespaces"))
    assert "acme/eng" in b.find_element(By.TAG_NAME, "main").text
    shots.take("namespaces", height=460)
    click(b, b.find_element(By.LINK_TEXT, "Pending"))
    assert seeded.pending in b.page_source and "carol" in b.find_element(By.TAG_NAME, "main").text
    shots.take("pending", height=520)

    # Now read as alice: every page, and every link followed, keeps her view.
    reader = b.find_element(By.CSS_SELECTOR, "header input[name=as_agent]")
    reader.clear()
    reader.send_keys(ALICE)
    click(b, b.find_element(By.CSS_SELECTOR, "header form button"))
    assert "Deploy order" in b.page_source and not _leaks(b.page_source, seeded)
    b.find_element(By.NAME, "q").send_keys("salary bands private numbers deploy")
    Select(b.find_element(By.NAME, "kind")).select_by_value("recall")  # any of the words (search wants all)
    click(b, b.find_element(By.CSS_SELECTOR, "form.search button"))
    assert "as_agent=" in b.current_url and not _leaks(b.page_source, seeded)
    click(b, b.find_element(By.LINK_TEXT, "Deploy order"))
    main = b.find_element(By.TAG_NAME, "main").text
    assert "Rollback plan" in main and not _leaks(b.page_source, seeded)
    click(b, b.find_element(By.LINK_TEXT, "Namespaces"))
    assert not _leaks(b.page_source, seeded)
    click(b, b.find_element(By.LINK_TEXT, "Pending"))
    assert seeded.pending in b.page_source and seeded.secret_pending not in b.page_source
    b.get(f"{server.url}/ui/memories/{seeded.secret}?as_agent={ALICE}")
    assert b.find_element(By.TAG_NAME, "h1").text == "404" and not _leaks(b.page_source, seeded)
