"""Headless Chromium on a Zabbix frontend: what a person at the NOC wall screen sees.

Debian's ``chromium`` and ``chromium-driver`` through selenium (both installed by
``packaging/bootstrap.sh``; selenium comes with the ``test`` extra). Used by ``kyoten demo fault
--screenshots`` and by the browser tests: log in, open a page, read the error banners and take a
screenshot. Everything on pages whose widgets redraw themselves is read in one script: an element
found in one call may be gone by the next.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from kyoten.shell.lab.procs import LabError

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,2300",  # the whole NOC dashboard in one picture
)


class FrontendUnavailable(LabError):
    """The frontend shows no login form but an error page (it cannot reach its database)."""


class Browser:
    """One headless Chromium, logged in to one frontend (``login=False``: not yet)."""

    def __init__(self, base: str, name: str, user: str, password: str, login: bool = True) -> None:
        if not (CHROMEDRIVER.exists() and CHROMIUM.exists()):
            raise LabError("chromium and chromium-driver are missing: bootstrap.sh install")
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError as exc:
            raise LabError("selenium is missing: pip install 'kyoten[test]'") from exc

        options = webdriver.ChromeOptions()
        #: the browser's profile, removed by quit() (each one is some MB of cache)
        self.profile = tempfile.mkdtemp(prefix="kyoten-chromium-")
        for flag in (*FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        options.binary_location = str(CHROMIUM)
        try:
            self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        except BaseException:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.base, self.name = base, name
        if not login:
            return
        try:
            self.login(user, password)
        except BaseException:
            self.quit()
            raise

    def login(self, user: str, password: str) -> None:
        """Log in; FrontendUnavailable when the frontend shows an error page instead of its
        login form (the page stays open, for a screenshot of what a person sees)."""
        from selenium.webdriver.common.by import By

        self.driver.get(f"{self.base}/index.php")
        if not self.driver.find_elements(By.NAME, "name"):
            body = self.driver.execute_script("return document.body.innerText;") or ""
            said = " ".join(str(body).split())[:300] or self.driver.title
            raise FrontendUnavailable(f"{self.name}: no login form, the page says: {said}")
        self.driver.find_element(By.NAME, "name").send_keys(user)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.ID, "enter").click()
        self.wait(lambda d: "action=dashboard" in d.current_url, "the dashboard after login")

    def wait(self, condition: Any, what: str, timeout: float = 60) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.5).until(
            condition, message=f"{self.name}: {what}"
        )

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base}/{path}")

    def errors(self) -> list[str]:
        """Error and warning messages shown anywhere on the page (the locale banner is one)."""
        texts: list[str] = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('.msg-bad, .msg-warning'))"
            ".filter(e => e.offsetParent !== null).map(e => e.textContent);"
        )
        if "Locale for language" in self.driver.page_source:
            texts.append("the locale banner is in the page")
        return texts

    def map_texts(self) -> list[str]:
        texts: list[str] = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('svg text')).map(t => t.textContent);"
        )
        return texts

    def shot(self, folder: Path, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
