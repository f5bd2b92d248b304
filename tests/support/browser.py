"""Headless Debian Chromium driven by Selenium, for the playground tests.

The browser is the system's (`make test` installs Debian's chromium + chromium-driver when missing); nothing is
downloaded at test time: Selenium gets the driver's path, so Selenium Manager never runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

# Flags that work on a headless, sandbox-less CI box: no GPU, no background traffic, a fresh profile.
HEADLESS_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--autoplay-policy=no-user-gesture-required",
]


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return (f"BROWSER TESTS NOT RUN: {path} is missing. Install Debian's '{package}' "
                    "(`make test` does: apt-get install -y chromium chromium-driver, as root).")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "BROWSER TESTS NOT RUN: the 'selenium' package is missing (pip install -e '.[test]')."
    return None


# Every host name fails to resolve except loopback: a page that needs the internet shows it (a CDN load fails).
OFFLINE_FLAGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]


@contextmanager
def chromium(fake_audio: Path | None = None, *, offline: bool = False) -> Iterator[object]:
    """A headless Chromium; with `fake_audio` (a WAV) the microphone plays that file in a loop, permission granted.

    `offline` leaves it only the loopback addresses to reach.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="voxloop-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in HEADLESS_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if offline:
        for flag in OFFLINE_FLAGS:
            options.add_argument(flag)
    if fake_audio is not None:
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument("--use-fake-ui-for-media-stream")
        options.add_argument(f"--use-file-for-fake-audio-capture={fake_audio}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def console(driver) -> str:
    """The page's console messages, for failure messages."""
    try:
        return "\n".join(f"{e['level']}: {e['message']}" for e in driver.get_log("browser"))
    except Exception as exc:  # the log is a diagnostic; never fail a test over it
        return f"(console unavailable: {exc})"
