"""GET / serves the page (one self-contained HTML file) and it only calls routes the server has; the probes answer.
The page's behaviour in a real browser is tests/e2e/test_page.py."""

from __future__ import annotations

import re
import tomllib

import httpx

from tests.service.serving import REPO


def test_page_is_served_self_contained(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for element in ("gen-prompt", "gen-max", "gen-temperature", "gen-topk", "gen-topp", "gen-seed", "gen-output",
                    "sent-text", "sent-bar", "ner-text", "ner-output", "versions", "apikey"):  # fmt: skip
        assert f'id="{element}"' in html, element
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external resources: it must work offline"
    assert "innerHTML" not in html, "user and model text is inserted as text nodes only"


def test_page_calls_only_routes_that_exist(client: httpx.Client) -> None:
    html = client.get("/").text
    called = set(re.findall(r"""(?:fetch|postJSON)\(\s*["'](/[a-z]+)["']""", html))
    assert called == {"/generate", "/sentiment", "/ner", "/info"}
    paths = client.get("/openapi.json").json()["paths"]
    assert called <= paths.keys()
    assert "stream: true" in html  # asks /generate for Server-Sent Events


def test_probes(client: httpx.Client) -> None:
    assert client.get("/livez").json() == {"status": "alive"}
    ready, health = client.get("/readyz"), client.get("/health")
    assert ready.status_code == health.status_code == 200 and ready.text == health.text


def test_page_ships_in_the_wheel() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "*.html" in config["tool"]["setuptools"]["package-data"]["service.web.page"]
    assert (REPO / "service" / "web" / "page" / "index.html").is_file()
