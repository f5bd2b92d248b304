"""/docs and /redoc work offline: their pages reference only assets this server serves, and those assets answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from api.settings import Settings
from routers import docs
from voxloop.app import create_app

KEY = "sk-docs-test"
# Every URL a page loads by itself: scripts, stylesheets, icons.
_LOADED = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)


@pytest.fixture
async def client(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    # With a key configured: the docs must stay open, their assets too.
    app = create_app(Settings(cache_dir=tmp_path, api_key=KEY))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.mark.parametrize(("page", "kinds"), [("/docs", {"javascript", "css"}), ("/redoc", {"javascript"})])
async def test_pages_load_only_local_assets(client: httpx.AsyncClient, page: str, kinds: set[str]) -> None:
    response = await client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"(?:https?:)?//[\w.-]+\.\w+/", html.replace("window.location.origin", "")), html
    urls = _LOADED.findall(html)
    seen = set()
    for url in urls:
        assert url.startswith(docs.ASSETS_PREFIX + "/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"].split(";")[0]
        if url.endswith(".js"):
            assert kind == "text/javascript" and len(asset.content) > 100_000, (url, kind)
            seen.add("javascript")
        elif url.endswith(".css"):
            assert kind == "text/css" and len(asset.content) > 10_000, (url, kind)
            seen.add("css")
    assert kinds <= seen, urls


async def test_assets_are_the_real_libraries(client: httpx.AsyncClient) -> None:
    swagger = (await client.get(f"{docs.ASSETS_PREFIX}/{docs.SWAGGER_JS}")).text
    redoc = (await client.get(f"{docs.ASSETS_PREFIX}/{docs.REDOC_JS}")).text
    assert "SwaggerUIBundle" in swagger and "Redoc" in redoc
    assert ".swagger-ui" in (await client.get(f"{docs.ASSETS_PREFIX}/{docs.SWAGGER_CSS}")).text


async def test_oauth2_redirect_and_schema_stay_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/v1/models")).status_code == 401  # the API itself still needs the key
    assert (await client.get(f"{docs.ASSETS_PREFIX}/nope.js")).status_code == 404


async def test_root_path_prefixes_every_url(tmp_path) -> None:
    """Behind a proxy that strips /speech, the page must ask for /speech/docs-assets/..., /speech/openapi.json."""
    app = create_app(Settings(cache_dir=tmp_path))
    transport = httpx.ASGITransport(app=app, root_path="/speech")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        html = (await http.get("/docs")).text
    assert f"/speech{docs.ASSETS_PREFIX}/{docs.SWAGGER_JS}" in html and "'/speech/openapi.json'" in html


async def test_without_the_assets_wheel_the_pages_fall_back_to_the_cdn(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(docs, "assets_dir", lambda: None)
    app = create_app(Settings(cache_dir=tmp_path))
    assert "fastapi_offline" in caplog.text
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        assert "swagger-ui-bundle.js" in (await http.get("/docs")).text
        assert (await http.get(f"{docs.ASSETS_PREFIX}/{docs.SWAGGER_JS}")).status_code == 404
