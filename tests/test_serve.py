"""scripts.serve / scripts.webapp on random tiny exports: the JSON API through HTTP against a real uvicorn
server, bad input (never a 500), 8 concurrent requests, an offline page, and the page in headless Chromium.

The browser test needs Debian's `chromium` and `chromium-driver` (.ci/run installs them); without them it
is skipped and says why. With SERVE_SCREENSHOT=path it also saves the screenshot the README shows.
"""
from __future__ import annotations

import base64
import os
import re
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from gpt.pretrained import load_pretrained
from gpt.reading import read_arrays
from scripts.browser import headless_chromium, missing_browser, running_server
from scripts.fonts import default_font_files
from scripts.serve import main as serve_main
from scripts.webapp import Limits, OCRService, create_app
from tests.fixtures import recognition_export, text_to_image_export
from tests.test_export import MAX_LENGTH
from vqvae.encoding import encoder_input
from vqvae.plumbing.io import decode_image
from vqvae.templates import LINE_CODES, is_horizontal, upright

# Small limits, so the 413 tests send kilobytes, not 10 MB (the defaults are Limits()).
LIMITS = Limits(max_bytes=200_000, max_pixels=1_000_000)


def text_crop(path: Path, text: str = "hello") -> Path:
    """A PNG of `text` in DejaVu Sans, black on white, like a crop of one printed word."""
    font = ImageFont.truetype(str(default_font_files()[0]), 28)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 16, bottom - top + 12), "white")
    ImageDraw.Draw(image).text((8 - left, 6 - top), text, font=font, fill="black")
    image.save(path)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header says width x height but whose pixel data is garbage: only a header check can size
    it, and decoding it fails."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", b"not zlib data") + chunk(b"IEND", b""))


def png_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def decode_png(b64: str) -> np.ndarray:
    return decode_image(base64.b64decode(b64), "response")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    reader = load_pretrained(recognition_export(root / "recognition"), load_tokenizer=False)
    drawer = load_pretrained(text_to_image_export(root / "t2i"), load_tokenizer=False)
    crop = text_crop(root / "hello.png")
    with running_server(create_app(OCRService(reader, drawer, LIMITS))) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield {"url": url, "client": client, "reader": reader, "drawer": drawer, "crop": crop, "root": root}


def expected_reading(served, path: Path):
    """What the library reads in the file (the server must say the same)."""
    return read_arrays(served["reader"], [decode_image(path.read_bytes(), str(path))])[0]


def read(client: httpx.Client, data: bytes, name: str = "crop.png", field: str = "image") -> httpx.Response:
    return client.post("/api/read", files={field: (name, data, "image/png")})


# ---------------------------------------------------------------------------------------------- the API
def test_health(served):
    health = served["client"].get("/api/health").json()
    assert health["status"] == "ok" and health["draw_model"].endswith("t2i")
    assert health["max_upload_bytes"] == LIMITS.max_bytes


def test_read_gives_text_confidence_and_what_the_model_saw(served):
    crop = served["crop"]
    response = read(served["client"], crop.read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    want = expected_reading(served, crop)
    assert body["text"] == want.text and body["confidence"] == pytest.approx(want.confidence, rel=1e-4)
    assert body["grid"] == list(want.grid.shape) and body["ms"] > 0
    image = decode_image(crop.read_bytes())
    # what the encoder saw, shown as the text stands: a horizontal crop's strip turned back
    seen = upright(encoder_input(image, MAX_LENGTH, 8), is_horizontal(image.shape[1], image.shape[0]))
    np.testing.assert_array_equal(decode_png(body["input_png_base64"]), seen)
    assert decode_png(body["reconstruction_png_base64"]).shape == seen.shape


def test_bad_uploads_are_400_or_413_with_a_message(served, tmp_path):
    client = served["client"]
    cases = {
        "empty": (read(client, b""), 400, "is empty"),
        "not an image": (read(client, b"hello, I am text", "notes.txt"), 400, "could not be read"),
        "1x1 pixel": (read(client, png_bytes(np.zeros((1, 1, 3), np.uint8))), 400, "at least 2x2"),
        "corrupt pixels": (read(client, png_header_only(40, 20)), 400, "could not be decoded"),
        "wrong field": (read(client, served["crop"].read_bytes(), field="file"), 400, "field 'image'"),
        "JSON, not multipart": (client.post("/api/read", json={"image": "x"}), 400, "multipart/form-data"),
        "too many bytes": (read(client, b"\x89PNG" + bytes(LIMITS.max_bytes)), 413, "limit is 200,000"),
        "too many pixels": (read(client, png_header_only(2000, 1000)), 413, "2000x1000 = 2,000,000 pixels"),
        "body too long": (read(client, bytes(LIMITS.max_bytes * 2)), 413, "the upload has"),
        "no body": (client.post("/api/read"), 400, "multipart field 'image'"),
        "GET": (client.get("/api/read"), 405, "POST /api/read"),
        "no such page": (client.get("/api/nothing"), 404, "/api/health"),
    }
    for name, (response, status, message) in cases.items():
        assert response.status_code == status, (name, response.text)
        assert message in response.json()["error"], (name, response.json())


def test_generate_draws_candidates_and_reads_them_back(served):
    client = served["client"]
    request = {"prompt": "hello", "num_candidates": 3, "seed": 7, "vertical": False}
    body = client.post("/api/generate", json=request).json()
    assert len(body["images"]) == 3 and body["ms"] > 0
    for image in body["images"]:
        assert decode_png(image["png_base64"]).ndim == 3
        assert isinstance(image["read_back"], str) and 0 < image["confidence"] <= 1
    again = client.post("/api/generate", json=request).json()
    assert [i["png_base64"] for i in again["images"]] == [i["png_base64"] for i in body["images"]]  # seeded
    vertical = client.post("/api/generate", json=request | {"vertical": True}).json()["images"]
    assert all(decode_png(image["png_base64"]).shape[1] <= LINE_CODES * 8 for image in vertical)  # upright strips


def test_bad_prompts_are_400_naming_the_problem(served):
    client = served["client"]
    cases = {
        "undrawable": ({"prompt": "hé!"}, "'é' (U+00E9"),
        "empty": ({"prompt": "  "}, "the prompt is empty"),
        "too long": ({"prompt": "hello" * 5}, "longer than"),
        "no prompt": ({"num_candidates": 2}, "prompt: Field required"),
        "too many": ({"prompt": "hi", "num_candidates": 99}, "num_candidates: Input should be less than or equal"),
        "misspelt": ({"prompt": "hi", "candidates": 2}, "candidates: Extra inputs"),
    }
    for name, (request, message) in cases.items():
        response = client.post("/api/generate", json=request)
        assert response.status_code == 400, (name, response.text)
        assert message in response.json()["error"], (name, response.json())
    assert "'!' (U+0021" in client.post("/api/generate", json={"prompt": "hé!"}).json()["error"]
    broken = client.post("/api/generate", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]


def test_eight_concurrent_requests_all_answer(served):
    """Reads and draws at once queue on the model lock: every answer arrives and matches a lone request."""
    client, crop = served["client"], served["crop"].read_bytes()
    alone = read(client, crop).json()["text"]
    drawn = client.post("/api/generate", json={"prompt": "abc", "num_candidates": 2, "seed": 1}).json()

    def call(i: int) -> httpx.Response:
        if i % 4 == 3:
            return client.post("/api/generate", json={"prompt": "abc", "num_candidates": 2, "seed": 1})
        return read(client, crop)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(call, range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    for i, response in enumerate(responses):
        if i % 4 == 3:
            assert response.json()["images"] == drawn["images"]
        else:
            assert response.json()["text"] == alone


def test_without_a_draw_model_generate_says_how_to_get_one(served):
    with running_server(create_app(OCRService(served["reader"]))) as url:
        response = httpx.post(f"{url}/api/generate", json={"prompt": "hi"})
        assert httpx.get(f"{url}/api/health").json()["draw_model"] is None
    assert response.status_code == 501 and "--draw-model" in response.json()["error"]


def test_the_page_and_its_assets_are_served_locally(served):
    client = served["client"]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/static/") or a.startswith("data:") for a in assets), assets
    for asset in (a for a in assets if a.startswith("/static/")):
        response = client.get(asset)
        assert response.status_code == 200 and not re.search(r"https?://", response.text), asset
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would load a CDN


def test_cli_needs_a_model_and_refuses_the_wrong_kind(served, capsys):
    with pytest.raises(SystemExit) as exit_info:
        serve_main(["--help"])
    assert exit_info.value.code == 0
    assert serve_main(["--model", str(served["root"] / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert serve_main(["--model", str(served["drawer"].directory)]) == 2  # a drawing model cannot read
    assert "recognition export" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- the browser
def chromium_or_skip():
    """A headless Chromium WebDriver, or a skip that says what is missing and how to get it."""
    problem = missing_browser()
    if problem:
        pytest.skip(f"browser test: {problem}")
    return headless_chromium()


def test_page_in_headless_chromium_reads_a_crop_and_draws_a_prompt(served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium_or_skip()
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(served["url"] + "/")
        wait.until(lambda b: "drawing with" in b.find_element(By.ID, "models").text)
        browser.find_element(By.ID, "file").send_keys(str(served["crop"]))
        wait.until(lambda b: b.find_element(By.ID, "read-section").get_attribute("data-state") in ("done", "error"))
        assert browser.find_element(By.ID, "read-error").text == ""
        want = expected_reading(served, served["crop"])
        assert browser.find_element(By.ID, "read-text").text == want.text
        for image in ("read-input", "read-reconstruction", "read-original"):
            assert browser.execute_script(f"return document.getElementById('{image}').naturalWidth") > 0

        browser.find_element(By.ID, "prompt").send_keys("hello")
        browser.find_element(By.ID, "draw-button").click()
        wait.until(lambda b: b.find_element(By.ID, "draw-section").get_attribute("data-state") in ("done", "error"))
        assert browser.find_element(By.ID, "draw-error").text == ""
        captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#candidates figcaption")]
        assert len(captions) == 4 and all(c.startswith("reads “") for c in captions)

        browser.find_element(By.ID, "prompt").send_keys("é")  # the server's 400 message reaches the page
        browser.find_element(By.ID, "draw-button").click()
        wait.until(lambda b: b.find_element(By.ID, "draw-section").get_attribute("data-state") == "error")
        assert "U+00E9" in browser.find_element(By.ID, "draw-error").text
        if os.environ.get("SERVE_SCREENSHOT"):
            browser.find_element(By.ID, "prompt").clear()
            browser.find_element(By.ID, "prompt").send_keys("hello")
            browser.find_element(By.ID, "draw-button").click()
            wait.until(lambda b: b.find_element(By.ID, "draw-section").get_attribute("data-state") == "done")
            height = browser.execute_script("return document.documentElement.scrollHeight")
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the whole page, not the window
                                    {"width": 1100, "height": height, "deviceScaleFactor": 1, "mobile": False})
            browser.save_screenshot(os.environ["SERVE_SCREENSHOT"])
    finally:
        browser.quit()
