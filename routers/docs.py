"""GET /docs (Swagger UI) and /redoc (ReDoc) with their JavaScript and CSS served by voxloop, not a CDN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine without the internet they stay blank. Here
the same pages (FastAPI's HTML builders) point at the copies the `fastapi-offline` wheel ships (Swagger UI 5,
ReDoc 2 standalone, MIT), mounted under `/docs-assets/`. ReDoc runs without Google Fonts. Kept out of the OpenAPI
schema: these are pages, not the API. Should the wheel be missing, the pages fall back to FastAPI's CDN URLs with a
warning rather than leaving the server without docs.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_PREFIX = "/docs-assets"
ASSETS_PACKAGE = "fastapi_offline"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"


def assets_dir() -> Path | None:
    """The folder holding the Swagger UI and ReDoc files, or None when the wheel that ships them is not installed."""
    if find_spec(ASSETS_PACKAGE) is None:
        return None
    folder = Path(str(files(ASSETS_PACKAGE) / "static"))
    return folder if all((folder / name).is_file() for name in (SWAGGER_JS, SWAGGER_CSS, REDOC_JS)) else None


def mount_docs(app: FastAPI) -> None:
    """Add /docs, its OAuth2 redirect and /redoc to `app` (created with `docs_url=None, redoc_url=None`)."""
    folder = assets_dir()
    local = folder is not None
    if folder is not None:
        app.mount(ASSETS_PREFIX, StaticFiles(directory=folder), name="docs-assets")
    else:
        logger.warning("The '%s' package is missing: /docs and /redoc load Swagger UI and ReDoc from a CDN "
                       "(pip install -e . installs it).", ASSETS_PACKAGE)
    router = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or f"{DOCS_URL}/oauth2-redirect"

    def urls(request: Request, **names: str) -> dict[str, str]:
        """Keyword arguments of FastAPI's page builders pointing at our copies (none: its CDN defaults)."""
        # Behind a proxy that strips a prefix, root_path keeps every URL pointing back at this server.
        root = request.scope.get("root_path", "")
        return {arg: f"{root}{ASSETS_PREFIX}/{name}" for arg, name in names.items()} if local else {}

    @router.get(DOCS_URL)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + oauth2_redirect_url,
            swagger_ui_parameters=app.swagger_ui_parameters,
            **urls(request, swagger_js_url=SWAGGER_JS, swagger_css_url=SWAGGER_CSS, swagger_favicon_url=FAVICON),
        )

    @router.get(oauth2_redirect_url)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get(REDOC_URL)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            with_google_fonts=not local,
            **urls(request, redoc_js_url=REDOC_JS, redoc_favicon_url=FAVICON),
        )

    app.include_router(router)
