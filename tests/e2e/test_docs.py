"""GET /docs (Swagger UI) and GET /redoc (ReDoc) render the schema in a real headless Chromium with the assets the
service serves itself: this machine, like a deployment behind a firewall, reaches no CDN, and a page that needed
one would stay blank."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import httpx
import pytest

from tests.e2e.test_page import _by, _wait
from tests.service.serving import Server

pytestmark = pytest.mark.usefixtures("page_server")


def test_openapi_names_the_project(page_server: Server) -> None:
    info = httpx.get(page_server.url + "/openapi.json").json()["info"]
    assert info["title"] == "rnnserve" and info["version"] == metadata.version("rnnserve")
    assert "LSTM" in info["description"] and "/v1/completions" in info["description"]
    for path in ("/docs", "/redoc"):
        html = httpx.get(page_server.url + path).text
        assert "cdn." not in html and "fonts.googleapis" not in html and "/docs-assets/" in html


def test_swagger_ui_renders_the_schema_offline(browser: Any, page_server: Server) -> None:
    browser.get(page_server.url + "/docs")
    title = _wait(browser, lambda d: d.find_elements(_by().CSS_SELECTOR, ".swagger-ui .info .title"), "the title")
    assert "rnnserve" in title[0].text
    paths = {e.text for e in browser.find_elements(_by().CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/generate", "/sentiment", "/ner", "/v1/completions", "/hf/text-classification"} <= paths


def test_redoc_renders_the_schema_offline(browser: Any, page_server: Server) -> None:
    browser.get(page_server.url + "/redoc")
    heading = _wait(browser, lambda d: d.find_elements(_by().CSS_SELECTOR, ".api-info h1"), "ReDoc's heading")
    assert "rnnserve" in heading[0].text
    assert "/v1/completions" in browser.find_element(_by().TAG_NAME, "body").get_attribute("textContent")
