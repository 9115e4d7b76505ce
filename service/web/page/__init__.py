"""GET /: one static HTML page (inline CSS and JS, no build step) to try the three models in a browser."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

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
    icon = FAVICON.encode()

    async def favicon() -> Response:  # the page names its icon inline; this is for whoever asks the usual place
        return Response(icon, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)


FAVICON = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><rect width='16' height='16' rx='3' fill='#2f5fd0'/>"
    "<path d='M4 11V5h3a2 2 0 010 4H4m3 0l3 2' stroke='white' fill='none'/></svg>"
)
