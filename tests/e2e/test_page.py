"""The page at GET / in a real headless Chromium: type, submit, and check what appears against what the HTTP API
answers for the same input. A screenshot of each task goes to test-output/ (gitignored)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SCREENSHOTS
from tests.service.serving import Server

pytestmark = pytest.mark.usefixtures("page_server")
WAIT = 60


def _by() -> Any:
    from selenium.webdriver.common.by import By

    return By


def _wait(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, message=f"waiting for {what}")


def _screenshot(driver: Any, section: str) -> None:
    element = driver.find_element(_by().ID, section)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
    element.screenshot(str(SCREENSHOTS / f"e2e-{section}.png"))


def _type(driver: Any, element_id: str, text: str) -> None:
    element = driver.find_element(_by().ID, element_id)
    element.clear()
    if text:
        element.send_keys(text)


@pytest.fixture(scope="module")
def page(browser: Any, page_server: Server) -> Any:
    browser.get(page_server.url + "/")
    _wait(browser, lambda d: d.find_elements(_by().CSS_SELECTOR, "#versions .model"), "the model versions")
    return browser


def test_page_shows_the_model_versions(page: Any, page_server: Server) -> None:
    shown = {e.get_attribute("data-task"): e.text for e in page.find_elements(_by().CSS_SELECTOR, "#versions .model")}
    models = httpx.get(page_server.url + "/info").json()["models"]
    assert shown == {m["task"]: f"{m['task']}: {m['name']}@{m['version']}" for m in models}
    assert page.title.startswith("rnnserve")


def test_generation_streams_into_the_page(page: Any, page_server: Server) -> None:
    params = {"prompt": "ROMEO:", "max_new_tokens": 300, "temperature": 0.7, "top_k": 20, "top_p": 0.95, "seed": 11}
    _type(page, "gen-prompt", params["prompt"])
    for field, element_id in [("max_new_tokens", "gen-max"), ("temperature", "gen-temperature"),
                              ("top_k", "gen-topk"), ("top_p", "gen-topp"), ("seed", "gen-seed")]:  # fmt: skip
        _type(page, element_id, str(params[field]))
    page.find_element(_by().ID, "gen-submit").click()
    out = page.find_element(_by().ID, "gen-output")
    _wait(page, lambda d: out.get_attribute("data-done") == "true", "the end of the generation")

    expected = httpx.post(page_server.url + "/generate", json=params, timeout=60).json()  # same seed, same text
    continuation = out.find_element(_by().CSS_SELECTOR, ".continuation").get_property("textContent")
    assert continuation == expected["text"]
    assert out.find_element(_by().CSS_SELECTOR, ".prompt").get_property("textContent") == params["prompt"]
    assert int(out.get_attribute("data-pieces")) > 1 and int(out.get_attribute("data-reads")) > 1, "not streamed"
    status = page.find_element(_by().ID, "gen-status").text
    assert f"finish_reason: {expected['finish_reason']}" in status and expected["model"] in status
    _screenshot(page, "generate")


def test_generation_error_is_shown(page: Any) -> None:
    _type(page, "gen-max", "100000")
    page.find_element(_by().ID, "gen-submit").click()
    status = page.find_element(_by().ID, "gen-status")
    _wait(page, lambda d: "422" in status.text, "the validation error")
    assert "max_new_tokens" in status.text and "error" in (status.get_attribute("class") or "")
    _type(page, "gen-max", "200")


def test_sentiment_shows_probabilities_as_a_bar(page: Any, page_server: Server) -> None:
    text = "a well-meaning film that never quite works"  # mixed: both sides of the bar show
    _type(page, "sent-text", text)
    page.find_element(_by().ID, "sent-submit").click()
    result = page.find_element(_by().ID, "sent-result")
    _wait(page, lambda d: result.is_displayed(), "the sentiment result")

    expected = httpx.post(page_server.url + "/sentiment", json={"text": text}).json()
    assert page.find_element(_by().ID, "sent-label").text == expected["label"]
    bar_width = page.find_element(_by().ID, "sent-bar").size["width"]
    for label, probability in expected["scores"].items():
        part = page.find_element(_by().ID, f"sent-bar-{label}")
        assert float(part.get_attribute("data-probability")) == pytest.approx(probability, abs=1e-9)
        assert part.size["width"] == pytest.approx(probability * bar_width, abs=3)  # the bar is to scale
    _screenshot(page, "sentiment")


def test_ner_highlights_entities_inline(page: Any, page_server: Server) -> None:
    text = "EU rejects German call to boycott British lamb, says Peter Blackburn in Brussels."
    _type(page, "ner-text", text)
    page.find_element(_by().ID, "ner-submit").click()
    out = page.find_element(_by().ID, "ner-output")
    _wait(page, lambda d: out.get_attribute("data-entities") is not None, "the entities")

    expected = httpx.post(page_server.url + "/ner", json={"text": text}).json()["entities"]
    assert expected, "the model finds no entity in a CoNLL-style sentence"
    marks = out.find_elements(_by().CSS_SELECTOR, "mark.entity")
    shown = [
        (m.find_element(_by().CSS_SELECTOR, ".entity-text").text, m.get_attribute("data-label"),
         m.find_element(_by().CSS_SELECTOR, ".entity-label").text)
        for m in marks
    ]  # fmt: skip
    assert shown == [(e["text"], e["label"], e["label"]) for e in expected]
    colours = {m.get_attribute("data-label"): m.value_of_css_property("background-color") for m in marks}
    assert len(set(colours.values())) == len(colours), "each entity type has its own colour"
    without_labels = (
        "const c = arguments[0].cloneNode(true);"
        "c.querySelectorAll('.entity-label').forEach((e) => e.remove()); return c.textContent;"
    )
    assert page.execute_script(without_labels, out) == text  # the whole text, entities in place
    _screenshot(page, "ner")
    page.save_screenshot(str(SCREENSHOTS / "e2e-page.png"))


def test_header_fits_and_says_where_the_models_run(page: Any, page_server: Server) -> None:
    box, key = page.find_element(_by().ID, "apikey-box"), page.find_element(_by().ID, "apikey")
    assert page.get_window_size()["width"] == 1200
    assert box.size["height"] < 1.5 * key.size["height"], "the API-key box wraps at 1,200 px"
    runs_on = page.find_element(_by().ID, "runs-on")
    assert runs_on.text == "runs on CPU, onnxruntime" and "CPUExecutionProvider" in runs_on.get_attribute("title")
    labels = [e.text for e in page.find_elements(_by().CSS_SELECTOR, "#generate .controls label")]
    assert "Characters to generate" in labels and "max_new_tokens" not in " ".join(labels)
    icon = httpx.get(page_server.url + "/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"


def test_characters_outside_the_alphabet_are_named(page: Any) -> None:
    _type(page, "gen-prompt", "ROMEO ☃")
    _type(page, "gen-max", "5")
    page.find_element(_by().ID, "gen-submit").click()
    out = page.find_element(_by().ID, "gen-output")
    _wait(page, lambda d: out.get_attribute("data-done") == "true", "the end of the generation")
    assert page.find_element(_by().ID, "gen-status").text.endswith("not in the model's alphabet, read as unknown: ☃")
    _type(page, "gen-max", "200")
