"""Swagger UI (/docs) and ReDoc (/redoc) in a real headless Chromium that cannot reach the internet.

Both pages must render the API (every operation listed) from what voxloop itself serves: with the JavaScript on a
CDN, as FastAPI has it by default, an offline browser shows a blank page. Screenshots land in tests/artifacts/."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.browser import chromium, console, missing_browser, screenshot

_WHY = missing_browser()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=_WHY or "")

# A few operations of each kind, by path as the schema has them.
PATHS = ["/v1/audio/transcriptions", "/v1/audio/speech", "/v1/emotion", "/v1/models", "/v1/chat/completions"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(offline=True) as driver:
        yield driver


def wait_for(driver: Any, what: str, check: Callable[[Any], Any], timeout: float = 30.0) -> Any:
    """Poll `check(driver)` until truthy; fail with a screenshot, the page's text and its console otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check(driver)
        if value:
            return value
        time.sleep(0.2)
    shot = screenshot(driver, "failed-docs-" + what.replace(" ", "-")[:40])
    body = driver.execute_script("return document.body ? document.body.innerText : ''")
    raise AssertionError(f"timed out waiting for {what} ({shot}).\nPage text:\n{body[:3000]}\n"
                         f"Console:\n{console(driver)}")


# ReDoc's menu footer shows a "Redocly" badge from its CDN; offline the image fails and ReDoc hides it (its onError),
# so it is the one outside request allowed. Nothing the page needs (scripts, styles, the schema) may come from outside.
DECORATIONS = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


def loaded_from_elsewhere(driver: Any, server_url: str) -> list[str]:
    names = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [n for n in names if not n.startswith((server_url, "data:", "blob:")) and n not in DECORATIONS]


def swagger_paths(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.opblock-summary-path')].map(e => e.dataset.path || e.innerText)")


def redoc_text(driver: Any) -> str:
    return driver.execute_script("return document.querySelector('redoc .menu-content') ? document.body.innerText : ''")


def test_swagger_ui_lists_the_endpoints_offline(browser: Any, server_url: str) -> None:
    browser.get(f"{server_url}/docs")
    shown = wait_for(browser, "swagger operations", lambda d: set(PATHS) <= set(paths := swagger_paths(d)) and paths)
    screenshot(browser, "docs-swagger-offline")
    assert len(shown) >= 15, shown
    assert loaded_from_elsewhere(browser, server_url) == []


def test_redoc_lists_the_endpoints_offline(browser: Any, server_url: str) -> None:
    browser.get(f"{server_url}/redoc")
    text = wait_for(browser, "redoc operations", lambda d: all(p in (t := redoc_text(d)) for p in PATHS) and t)
    screenshot(browser, "docs-redoc-offline")
    assert "Recognize the speaker's emotion" in text
    assert loaded_from_elsewhere(browser, server_url) == []
