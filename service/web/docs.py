"""GET /docs (Swagger UI) and GET /redoc (ReDoc) without a CDN: FastAPI's pages load their scripts and styles from
jsdelivr, which is a blank page on a machine without internet. The assets come from the `fastapi-offline` wheel
(Swagger UI's bundle and CSS, ReDoc's standalone bundle; MIT, no dependency beyond FastAPI), served under
/docs-assets. The OpenAPI document's title, version and description are the project's (`rnnserve`'s package
metadata), not "FastAPI 0.1.0"."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/docs-assets"
DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def describe(app: FastAPI) -> None:
    """The project's title, version and description on the OpenAPI document."""
    try:
        meta = metadata.metadata("rnnserve")
        version, summary = meta["Version"], meta["Summary"]
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        version, summary = "unknown", ""
    app.title, app.version = "rnnserve", version
    app.description = (
        f"{summary}.\n\nOur routes: /generate, /sentiment, /ner. The clients people already use: OpenAI's "
        "(/v1/completions, /v1/models), TGI's (POST /, /generate_stream) and Hugging Face's (/hf/...)."
    )
    app.openapi_schema = None  # built again, lazily, with these


def add_docs_routes(app: FastAPI) -> None:
    """Replaces FastAPI's /docs and /redoc with pages whose assets the service serves itself."""
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"):
        if not (ASSETS / name).is_file():  # checked at start-up: a broken install must not give a blank page
            raise FileNotFoundError(f"{ASSETS / name}: Swagger UI / ReDoc asset missing (pip install fastapi-offline)")
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in DOC_PATHS]
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} {app.version}",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
        )

    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} {app.version}",
            redoc_js_url=f"{PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
