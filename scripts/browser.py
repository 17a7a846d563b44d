"""A served app and a headless browser on it: what the web page's browser test and the README screenshot share.

Needs Debian's `chromium` and `chromium-driver` and the pip package selenium (.ci/run installs them).
"""
from __future__ import annotations

import importlib.util
import shutil
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import uvicorn


@contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free local port in a thread; yields the base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 30 s")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def missing_browser() -> str | None:
    """What is missing for `headless_chromium`, with the fix; None when nothing is."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not found; `apt-get install chromium chromium-driver` (.ci/run does)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed; `pip install selenium`"
    return None


def headless_chromium() -> Any:
    """A headless Chromium WebDriver; RuntimeError naming what is missing (see `missing_browser`)."""
    problem = missing_browser()
    if problem:
        raise RuntimeError(f"no headless browser: {problem}")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    # Root in a container needs --no-sandbox; the rest keeps a headless run quiet, offline and repeatable.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1100,900"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
