"""GET /: one static HTML page (inline CSS and JS, no build step) to try the three models in a browser."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from service.web.routes import remove_route


def page_html() -> str:
    return files(__package__).joinpath("index.html").read_text(encoding="utf-8")


def add_page_route(app: FastAPI) -> None:
    """Replaces LitServe's "litserve running" at GET /; the page calls the same routes any client does."""
    remove_route(app, "/", "GET")
    html = page_html()  # read once: a missing file stops start-up, not the first visitor

    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    app.add_api_route("/", page, methods=["GET"], summary="A page to try the models", include_in_schema=False)
