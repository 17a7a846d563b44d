"""The README's screenshot of the web page: the shipped models read a crop and draw a prompt in headless Chromium.

    python -m scripts.serve_screenshot CROP.png --prompt "안녕하세요" --output docs/images/serve.png

Needs Debian's chromium and chromium-driver and selenium (scripts/browser.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpt.pretrained import SHIPPED_DRAW_MODEL, SHIPPED_MODEL, load_pretrained
from scripts.browser import headless_chromium, running_server
from scripts.webapp import OCRService, create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("crop", help="an image of one line of text to read")
    parser.add_argument("--prompt", default="안녕하세요", help="text to draw")
    parser.add_argument("--output", default="docs/images/serve.png", help="PNG to write")
    args = parser.parse_args(argv)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    service = OCRService(load_pretrained(SHIPPED_MODEL, load_tokenizer=False),
                         load_pretrained(SHIPPED_DRAW_MODEL, load_tokenizer=False))
    with running_server(create_app(service)) as url:
        browser = headless_chromium()
        try:
            wait = WebDriverWait(browser, 60)
            browser.get(url + "/")
            wait.until(lambda b: "drawing with" in b.find_element(By.ID, "models").text)
            browser.find_element(By.ID, "file").send_keys(str(Path(args.crop).resolve()))
            wait.until(lambda b: b.find_element(By.ID, "read-section").get_attribute("data-state") == "done")
            browser.find_element(By.ID, "prompt").send_keys(args.prompt)
            count = browser.find_element(By.ID, "num-candidates")
            count.clear()
            count.send_keys("8")  # best of 8, as gpt.generate and the benchmark draw
            browser.find_element(By.ID, "draw-button").click()
            wait.until(lambda b: b.find_element(By.ID, "draw-section").get_attribute("data-state") == "done")
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the whole page, not the window
                                    {"width": 1100, "height": height, "deviceScaleFactor": 1, "mobile": False})
            browser.save_screenshot(args.output)
        finally:
            browser.quit()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
