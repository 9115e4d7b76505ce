"""A real server and a real headless Chromium driven by Selenium through the distribution's chromedriver.

Chromium comes from Debian (`apt-get install -y chromium chromium-driver`; `make test` installs it where it can).
Where neither can be found the tests skip, saying so; nothing is downloaded at test time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.serving import REPO, Server, start_server, stop_server

SCREENSHOTS = REPO / "test-output"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,1400",
)


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")  # torn down after the e2e tests: no idle browser or server for the rest of a run
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a dev dependency: pip install -e .[dev]")
    binary, driver_path = _find(BROWSERS), _find(DRIVERS)
    if binary is None or driver_path is None:
        pytest.skip(
            f"no browser: chromium={binary}, chromedriver={driver_path}; "
            "install them with `apt-get install -y chromium chromium-driver` (root and Debian packages needed)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    SCREENSHOTS.mkdir(exist_ok=True)
    service = webdriver.ChromeService(executable_path=driver_path, log_output=str(SCREENSHOTS / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")  # torn down after the e2e tests: no idle browser or server for the rest of a run
def page_server(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(artifacts, tmp_path_factory.mktemp("e2e-server"))
    yield running
    stop_server(running)
