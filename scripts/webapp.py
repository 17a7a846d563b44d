"""The local web page's server: a recognition export reads uploaded crops, an optional text-to-image export
draws prompts (`python -m scripts.serve` is the CLI; the page itself is scripts/static/).

    service = OCRService(load_pretrained(MODEL_DIR), load_pretrained(DRAW_MODEL_DIR))
    app = create_app(service)          # FastAPI; run it with uvicorn

API (the page uses nothing else; every error is JSON `{"error": message}`):
    GET  /api/health      {"status": "ok", "read_model", "draw_model" (null without one), limits}
    POST /api/read        multipart field `image` -> {"text", "confidence", "reconstruction_png_base64",
                          "input_png_base64", "grid": [rows, cols], "ms"}
    POST /api/generate    JSON {"prompt", "num_candidates", "seed", "vertical"} -> {"images": [{"png_base64",
                          "read_back", "confidence", "exact", "error"}], "ms"}, best candidate first

Reading and drawing are the library's (gpt.reading.read_arrays, gpt.drawing.generate_for_prompts and rerank);
how a crop is normalized is vqvae.encoding.encoder_input's business, so the server never changes with it.
"""
from __future__ import annotations

import base64
import io
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from gpt.drawing import (DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, PromptError, generate_for_prompts,
                         require_text_to_image, rerank)
from gpt.pretrained import Pretrained
from gpt.reading import read_arrays
from gpt.sampling import SamplingConfig
from vqvae.data import read_image_size
from vqvae.encoding import encoder_input
from vqvae.decode import decode_grids
from vqvae.templates import is_horizontal, upright
from vqvae.plumbing.io import ImageReadError, decode_image

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
MAX_CANDIDATES = 16  # one request must not hold the model lock for minutes
# Multipart framing (boundaries, part headers) on top of the file itself, for the Content-Length check.
MULTIPART_SLACK = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """What one upload may be: bytes of the file, and pixels (width x height, from its header)."""
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000


class RequestError(Exception):
    """Bad input: answered with `status` and {"error": message}, never a 500."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class GenerateRequest(BaseModel):
    """The body of POST /api/generate."""
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not silently a default
    prompt: str = Field(max_length=1000)  # far over any model's text part; check_prompts names the real limit
    num_candidates: int = Field(4, ge=1, le=MAX_CANDIDATES)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    vertical: bool = False


def png_base64(image: np.ndarray) -> str:
    """RGB uint8 (H, W, 3) -> base64 of its PNG file."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok, "OpenCV failed to encode a uint8 RGB array as PNG"
    return base64.b64encode(encoded.tobytes()).decode("ascii")


def _finite(value: float) -> Optional[float]:
    """JSON has no NaN: an unknown confidence (an undecodable candidate) is null."""
    return None if math.isnan(value) else float(value)


class OCRService:
    """The loaded models and what the API does with them, apart from HTTP.

    One lock serialises every model call: torch already spreads one call over the cores, and a model
    mid-call must not be entered by another request; concurrent requests simply queue.
    """

    def __init__(self, reader: Pretrained, drawer: Optional[Pretrained] = None, limits: Limits = Limits()) -> None:
        reader.require_recognition()
        if reader.vqvae is None:
            raise ValueError(f"{reader.directory} was loaded without its VQ-VAE; load it with load_vqvae=True")
        if drawer is not None:
            require_text_to_image(drawer)
        self.reader, self.drawer, self.limits = reader, drawer, limits
        self._lock = threading.Lock()

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "read_model": str(self.reader.directory),
                "draw_model": str(self.drawer.directory) if self.drawer else None,
                "max_upload_bytes": self.limits.max_bytes, "max_pixels": self.limits.max_pixels,
                "max_candidates": MAX_CANDIDATES}

    def decode_upload(self, data: bytes, name: str) -> np.ndarray:
        """The uploaded file's bytes -> RGB uint8 (H, W, 3); RequestError 400 (empty, not an image, < 2x2)
        or 413 (too many bytes, or too many pixels by its header: checked before any pixel is decoded)."""
        limits = self.limits
        if not data:
            raise RequestError(400, f"the uploaded file {name!r} is empty; pick an image file (PNG, JPEG, ...)")
        if len(data) > limits.max_bytes:
            raise RequestError(413, f"the uploaded file {name!r} has {len(data):,} bytes; the limit is "
                                    f"{limits.max_bytes:,}. Crop the line of text, or save it smaller")
        try:
            width, height = read_image_size(io.BytesIO(data), name)
            if width * height > limits.max_pixels:
                raise RequestError(413, f"image {name!r} is {width}x{height} = {width * height:,} pixels; the "
                                        f"limit is {limits.max_pixels:,}. Crop the line of text, or scale it down")
            return decode_image(data, name)
        except ImageReadError as error:
            raise RequestError(400, f"{error}; upload a crop of one line of text as PNG, JPEG, WebP, BMP or "
                                    f"TIFF") from None

    def read(self, data: bytes, name: str) -> dict[str, Any]:
        """OCR one uploaded crop: text, confidence, the encoder's input and its reconstruction, and the
        milliseconds the request took here (waiting for the model included)."""
        started = time.perf_counter()
        image = self.decode_upload(data, name)
        vqvae = self.reader.vqvae
        with self._lock:
            try:
                reading = read_arrays(self.reader, [image])[0]
            except ImageReadError as error:
                raise RequestError(400, str(error)) from None
            reconstruction = decode_grids(vqvae, [reading.grid], device=self.reader.device)[0]
        model_input = encoder_input(image, self.reader.max_length, vqvae.downsample, vqvae.line_codes)
        horizontal = is_horizontal(image.shape[1], image.shape[0])  # strips are shown as the text stands
        return {"text": reading.text, "confidence": reading.confidence,
                "reconstruction_png_base64": png_base64(upright(reconstruction, horizontal)),
                "input_png_base64": png_base64(upright(model_input, horizontal)), "grid": list(reading.grid.shape),
                "ms": round((time.perf_counter() - started) * 1000, 1)}

    def generate(self, request: GenerateRequest) -> dict[str, Any]:
        """`num_candidates` images of the prompt, each read back by the recognizer, best first."""
        started = time.perf_counter()
        if self.drawer is None:
            raise RequestError(501, "this server has no text-to-image model; restart it with --draw-model DIR "
                                    "(an export written by python -m gpt.finetune)")
        if not request.prompt.strip():
            raise RequestError(400, "the prompt is empty; type the text to draw")
        sampling = SamplingConfig(DEFAULT_TEMPERATURE, guidance_scale=DEFAULT_GUIDANCE, seed=request.seed)
        with self._lock:
            try:
                items = generate_for_prompts(self.drawer, [request.prompt], request.num_candidates, sampling,
                                             progress=False, vertical=request.vertical)
            except PromptError as error:
                raise RequestError(400, str(error)) from None  # names the characters it cannot draw
            rerank(items, self.reader, self.drawer.fingerprint)
        items.sort(key=lambda item: (item.rank < 0, item.rank))  # undecodable candidates (rank -1) last
        images = [{"png_base64": png_base64(item.image) if item.image is not None else None,
                   "read_back": item.read_back, "confidence": _finite(item.confidence), "exact": item.exact,
                   "error": item.error} for item in items]
        return {"images": images, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_upload(request: Request, limits: Limits) -> tuple[bytes, str]:
    """The bytes and name of multipart field `image`, refusing an oversized body from its Content-Length
    before reading it (so a huge upload is never spooled to disk)."""
    length = request.headers.get("content-length")
    if length is None and "chunked" in request.headers.get("transfer-encoding", "").lower():
        raise RequestError(411, "send the upload with a Content-Length header, not chunked (browsers and "
                                "curl -F do)")
    if length is not None and not length.isdigit():
        raise RequestError(400, f"Content-Length {length!r} is not a number of bytes")
    if length is None or int(length) == 0:
        raise RequestError(400, "the request has no body; send the image as multipart field 'image', e.g. "
                                "curl -F image=@crop.png")
    if int(length) > limits.max_bytes + MULTIPART_SLACK:
        raise RequestError(413, f"the upload has {int(length):,} bytes; the limit is {limits.max_bytes:,}. "
                                f"Crop the line of text, or save it smaller")
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise RequestError(400, f"send the image as multipart/form-data with the field 'image' (got Content-Type "
                                f"{content_type!r}), e.g. curl -F image=@crop.png")
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise RequestError(400, f"no file in the multipart field 'image' (fields sent: {sorted(form.keys())}); "
                                f"send it as image=@crop.png")
    data = await upload.read(limits.max_bytes + 1)  # one byte over tells decode_upload it is too big
    return data, upload.filename or "image"


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({item.get('ctx', {}).get('error', item.get('msg'))})")
            continue
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
    example = '{"prompt": "hello", "num_candidates": 4, "seed": 0, "vertical": false}'
    return f"bad request body: {'; '.join(parts)}. Send JSON like {example} (num_candidates 1-{MAX_CANDIDATES})"


def create_app(service: OCRService) -> FastAPI:
    """The FastAPI app: the page at /, its files under /static/, the JSON API under /api/."""
    # No /docs or /redoc: FastAPI's docs pages load their scripts from a CDN, and this page works offline.
    app = FastAPI(title="Inverse DALL-E OCR", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestError)
    async def on_request_error(request: Request, error: RequestError) -> JSONResponse:
        return _error(error.status, error.message)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(error))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = f"{error.detail}: {request.method} {request.url.path}"
        if error.status_code in (404, 405):
            message += ("; the page is at / and the API is GET /api/health, POST /api/read (multipart field "
                        "'image') and POST /api/generate (JSON)")
        return _error(error.status_code, message)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, error: Exception) -> JSONResponse:  # a bug, never bad input
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(error).__name__}: {error}); see the server log")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return service.health()

    @app.post("/api/read")
    async def read(request: Request) -> dict[str, Any]:
        data, name = await _read_upload(request, service.limits)
        return await run_in_threadpool(service.read, data, name)  # model work off the event loop

    @app.post("/api/generate")
    def generate(body: GenerateRequest) -> dict[str, Any]:  # a plain def: FastAPI runs it in a worker thread
        return service.generate(body)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
