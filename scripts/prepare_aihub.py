"""Crop AIHub Korean OCR annotations into a labelled dataset (DESIGN §1).

Each AIHub JSON file lists `images` (id, file_name, width, height) and `annotations` (image_id,
bbox [x, y, w, h], text). Every usable annotation becomes one crop file with a stable name and one row of
`DIR/labels.csv`:

    img_path,text,orientation,width,height,category,source,source_image,bbox

`orientation` is `vertical` when the crop is taller than `--vertical-ratio` times its width (vertical signs
keep their orientation: nothing is rotated). `category` names the JSON folder, `source` the JSON file
(`category/relative/path.json`), `bbox` the integer box actually cropped (`x y w h`).

    python -m scripts.prepare_aihub JSON_DIR IMAGE_DIR [JSON_DIR IMAGE_DIR ...] --output DIR
    python -m scripts.prepare_aihub --pair signs/label signs/image --pair books/label books/image --output DIR
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import os
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd
from tqdm import tqdm

from scripts.convert_common import ConversionSummary, distinct_names, safe_name, stable_id
from vqvae.plumbing.io import ImageReadError, load_image, normalize_text, save_image, write_csv_atomic
from vqvae.plumbing.cli import run_cli

COLUMNS = ["img_path", "text", "orientation", "width", "height", "category", "source", "source_image", "bbox"]
# A float box may overhang the image by rounding; only more than this (pixels) counts as out of bounds.
BOUNDS_TOLERANCE = 0.5
MIN_CROP_SIDE = 2  # vqvae.plumbing.io.load_image refuses anything smaller

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AihubOptions:
    """How annotations become crops (the CLI flags of the same names)."""
    out_of_bounds: str = "clip"             # "clip": crop the part inside the image; "skip": drop the box
    vertical_ratio: float = 1.5             # vertical when crop height > ratio * crop width
    illegible: tuple[str, ...] = ("xxx",)   # texts marking an unreadable box (skipped, not an error)
    image_format: str = "png"               # crop file format: png (lossless) or jpg
    workers: int = 0                        # processes decoding images; 0 = in this process
    merge: bool = False                     # keep rows of an existing CSV from JSON files not seen now
    csv_name: str = "labels.csv"


@dataclass(frozen=True)
class CropJob:
    """One annotation to cut out of its image: `bbox` is AIHub's float [x, y, w, h]."""
    where: str       # "category/file.json#annotation 3": the report's `row`
    crop_path: str   # relative to the output folder
    text: str
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class ImageJob:
    """All crops of one source image, processed together so the image is decoded once."""
    image_path: str
    category: str
    source: str
    file_name: str
    json_size: tuple[int, int] | None   # (width, height) the JSON claims
    crops: tuple[CropJob, ...]


@dataclass
class ImageResult:
    rows: list[dict] = field(default_factory=list)
    skips: list[tuple[str, str, str, str]] = field(default_factory=list)   # reason, where, img_path, detail
    notes: list[tuple[str, str, str, str]] = field(default_factory=list)


def crop_box(bbox: tuple[float, float, float, float], width: int, height: int,
             out_of_bounds: str) -> tuple[tuple[int, int, int, int] | None, str, str]:
    """Integer crop box (x0, y0, x1, y1) of a float [x, y, w, h] box inside a width x height image.

    Returns (box, status, detail): status "" (inside), "clipped" (kept, partly outside), or a skip reason
    "bbox_outside_image" / "bbox_out_of_bounds" (partly outside with out_of_bounds="skip") /
    "bbox_too_small" (under 2 px after clipping), with box None for a skip.
    """
    x, y, w, h = bbox
    shown = f"bbox [{x:g}, {y:g}, {w:g}, {h:g}] in a {width}x{height} image"
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return None, "bbox_outside_image", shown
    overhang = (x < -BOUNDS_TOLERANCE or y < -BOUNDS_TOLERANCE
                or x + w > width + BOUNDS_TOLERANCE or y + h > height + BOUNDS_TOLERANCE)
    if overhang and out_of_bounds == "skip":
        return None, "bbox_out_of_bounds", shown + " (--out-of-bounds skip)"
    # Round outward so no ink is cut, then clip to the image (sub-pixel overhang is clipped silently).
    x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
    x1, y1 = min(width, math.ceil(x + w)), min(height, math.ceil(y + h))
    if x1 - x0 < MIN_CROP_SIDE or y1 - y0 < MIN_CROP_SIDE:
        return None, "bbox_too_small", f"{shown} gives a {x1 - x0}x{y1 - y0} crop; need at least 2x2"
    if overhang:
        return (x0, y0, x1, y1), "clipped", f"{shown} clipped to [{x0}, {y0}, {x1 - x0}, {y1 - y0}]"
    return (x0, y0, x1, y1), "", ""


def process_image(job: ImageJob, output_dir: str, options: AihubOptions) -> ImageResult:
    """Decode one source image and write each of its crops (atomically, overwriting a previous run's)."""
    result = ImageResult()
    try:
        image = load_image(job.image_path)
    except ImageReadError as error:
        reason = "missing_image" if not os.path.exists(job.image_path) else "unreadable_image"
        for crop in job.crops:
            result.skips.append((reason, crop.where, job.image_path, str(error)))
        return result
    height, width = image.shape[:2]
    if job.json_size is not None and job.json_size != (width, height):
        result.notes.append(("json_size_mismatch", f"{job.source}:{job.file_name}", job.image_path,
                             f"JSON says {job.json_size[0]}x{job.json_size[1]}, the file is {width}x{height}; "
                             f"boxes are checked against the file"))
    for crop in job.crops:
        box, status, detail = crop_box(crop.bbox, width, height, options.out_of_bounds)
        if box is None:
            result.skips.append((status, crop.where, job.image_path, detail))
            continue
        x0, y0, x1, y1 = box
        save_image(Path(output_dir) / crop.crop_path, image[y0:y1, x0:x1])
        if status:
            result.notes.append((status, crop.where, crop.crop_path, detail))
        crop_w, crop_h = x1 - x0, y1 - y0
        result.rows.append({
            "img_path": crop.crop_path, "text": crop.text,
            "orientation": "vertical" if crop_h > options.vertical_ratio * crop_w else "horizontal",
            "width": crop_w, "height": crop_h, "category": job.category, "source": job.source,
            "source_image": job.file_name, "bbox": f"{x0} {y0} {crop_w} {crop_h}"})
    return result


class ImageLocator:
    """Finds an AIHub `file_name` under an image folder: directly, beside the JSON's relative folder, or
    (built once, on the first miss) by a unique base name anywhere below the folder."""

    def __init__(self, image_dir: Path):
        self.image_dir = image_dir
        self._by_name: dict[str, list[Path]] | None = None

    def find(self, file_name: str, json_rel: Path) -> tuple[Path | None, str]:
        """(path, "") or (None, why it is missing)."""
        for candidate in (self.image_dir / file_name, self.image_dir / json_rel.parent / file_name):
            if candidate.is_file():
                return candidate, ""
        if self._by_name is None:
            self._by_name = {}
            for root, _, files in os.walk(self.image_dir):
                for name in files:
                    self._by_name.setdefault(name, []).append(Path(root) / name)
        matches = self._by_name.get(Path(file_name).name, [])
        if len(matches) == 1:
            return matches[0], ""
        if matches:
            return None, (f"{len(matches)} files named {Path(file_name).name!r} under {self.image_dir}: "
                          f"{[str(m) for m in matches[:3]]}; cannot tell which one")
        return None, f"no file {file_name!r} under {self.image_dir}"


def json_files(json_dir: Path) -> list[tuple[Path, Path]]:
    """(path, path relative to json_dir) of every .json below json_dir (sorted), or of json_dir itself."""
    if json_dir.is_file():
        return [(json_dir, Path(json_dir.name))]
    found = sorted(p for p in json_dir.rglob("*") if p.suffix.lower() == ".json" and p.is_file())
    return [(p, p.relative_to(json_dir)) for p in found]


def _as_bbox(value: Any) -> tuple[float, float, float, float] | None:
    """AIHub bbox [x, y, w, h] (numbers or numeric strings) -> floats, or None if malformed."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    try:
        box = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
        return None
    return box  # type: ignore[return-value]


def parse_json(path: Path, json_rel: Path, category: str, locator: ImageLocator, options: AihubOptions,
               seen: set[str], summary: ConversionSummary) -> list[ImageJob]:
    """Turn one AIHub JSON file into image jobs, counting every annotation that cannot become a crop."""
    source = f"{category}/{json_rel.as_posix()}"
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
        images, annotations = data["images"], data["annotations"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        summary.skip("bad_json", source, str(path),
                     f"{type(error).__name__}: {error}; expected a JSON object with `images` and `annotations`")
        return []
    images = [images] if isinstance(images, dict) else list(images or [])
    annotations = [annotations] if isinstance(annotations, dict) else list(annotations or [])
    by_id = {img.get("id"): img for img in images if isinstance(img, dict)}
    crops_by_image: dict[Any, list[CropJob]] = {}
    for index, ann in enumerate(annotations):
        where = f"{source}#annotation {index}"
        if not isinstance(ann, dict):
            summary.skip("bad_annotation", where, "", f"not an object: {ann!r:.80}")
            continue
        image_id = ann.get("image_id", next(iter(by_id)) if len(by_id) == 1 else None)
        image = by_id.get(image_id)
        if image is None or not image.get("file_name"):
            summary.skip("unknown_image_id", where, "", f"image_id {image_id!r} is not among the JSON's images "
                         f"(or that image has no file_name)")
            continue
        file_name = str(image["file_name"])
        text = ann.get("text")
        if not isinstance(text, str):
            summary.skip("missing_text", where, file_name, f"text is {text!r}")
            continue
        text = normalize_text(text.strip())
        if text in options.illegible:
            summary.skip("illegible", where, file_name, f"text {text!r}", error=False)
            continue
        if not text:
            summary.skip("empty_text", where, file_name, "text is blank")
            continue
        if ann.get("bbox") is None:
            summary.skip("null_bbox", where, file_name, "bbox is null or absent")
            continue
        bbox = _as_bbox(ann["bbox"])
        if bbox is None:
            summary.skip("bad_bbox", where, file_name,
                         f"bbox {ann['bbox']!r:.80} is not [x, y, w, h] with w > 0 and h > 0")
            continue
        # Stable and collision-free: the hash covers the JSON file, the image and the annotation's index.
        stem = safe_name(Path(file_name).stem, 40)
        name = f"{stem}_{index:03d}_{stable_id(source, file_name, str(index), length=8)}.{options.image_format}"
        crop_path = f"images/{category}/{name}"
        if crop_path in seen:
            summary.skip("duplicate", where, file_name, f"{crop_path} already made in this run "
                         f"(the same JSON folder in two pairs?)", error=False)
            continue
        seen.add(crop_path)
        crops_by_image.setdefault(image_id, []).append(CropJob(where, crop_path, text, bbox))
    jobs = []
    for image_id, crops in crops_by_image.items():
        image = by_id[image_id]
        found, why = locator.find(str(image["file_name"]), json_rel)
        if found is None:
            for crop in crops:
                summary.skip("missing_image", crop.where, str(image["file_name"]), why)
            continue
        try:
            json_size = (int(image["width"]), int(image["height"]))
        except (KeyError, TypeError, ValueError):
            json_size = None
        jobs.append(ImageJob(str(found), category, source, str(image["file_name"]), json_size, tuple(crops)))
    return jobs


def _batches(pairs: Sequence[tuple[Path, Path]], options: AihubOptions, summary: ConversionSummary,
             bar: tqdm, sources: set[str], batch_size: int) -> Iterator[list[ImageJob]]:
    """Stream image jobs JSON file by JSON file, in batches (bounded memory, one pool call per batch)."""
    seen: set[str] = set()
    batch: list[ImageJob] = []
    listed = [json_files(json_dir) for json_dir, _ in pairs]
    num_files, done = sum(len(files) for files in listed), 0
    for (_, image_dir), category, files in zip(pairs, distinct_names([p[0] for p in pairs]), listed):
        locator = ImageLocator(image_dir)
        for path, rel in files:
            sources.add(f"{category}/{rel.as_posix()}")
            jobs = parse_json(path, rel, category, locator, options, seen, summary)
            done += 1
            bar.total += len(jobs)   # images are known only once their JSON is read; shown at the next update
            bar.set_postfix_str(f"json {done}/{num_files}", refresh=False)
            batch.extend(jobs)
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def prepare_aihub(pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]], output_dir: str | os.PathLike,
                  options: AihubOptions = AihubOptions()) -> ConversionSummary:
    """Crop every usable annotation of the (JSON_DIR, IMAGE_DIR) pairs into `output_dir/images/` and write
    `output_dir/<csv_name>` atomically; returns the summary (its `report` is not yet written).

    Rows come in a fixed order (JSON files sorted, annotations in file order) whatever `workers` is.
    """
    unique = dict.fromkeys((Path(os.path.abspath(j)), Path(os.path.abspath(i))) for j, i in pairs)
    if len(unique) < len(pairs):
        logger.warning("%d (JSON_DIR, IMAGE_DIR) pair(s) given more than once; each is processed once",
                       len(pairs) - len(unique))
    pairs = list(unique)
    for json_dir, image_dir in pairs:
        if not json_dir.exists():
            raise FileNotFoundError(f"JSON folder {str(json_dir)!r} does not exist; pass JSON_DIR IMAGE_DIR pairs")
        if not image_dir.is_dir():
            raise FileNotFoundError(f"image folder {str(image_dir)!r} does not exist or is not a folder; "
                                    f"pass JSON_DIR IMAGE_DIR pairs")
    if options.out_of_bounds not in ("clip", "skip"):
        raise ValueError(f"out_of_bounds={options.out_of_bounds!r}; use 'clip' or 'skip'")
    if options.image_format not in ("png", "jpg"):
        raise ValueError(f"image_format={options.image_format!r}; use 'png' or 'jpg'")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = ConversionSummary(what="crops")
    rows: list[dict] = []
    sources: set[str] = set()
    work = partial(process_image, output_dir=str(output_dir), options=options)
    pool = multiprocessing.Pool(options.workers) if options.workers > 0 else None
    try:
        with tqdm(total=0, desc="cropping AIHub images", unit="img", dynamic_ncols=True) as bar:
            for batch in _batches(pairs, options, summary, bar, sources, batch_size=max(64, 32 * options.workers)):
                results = pool.imap(work, batch, chunksize=4) if pool else map(work, batch)
                for result in results:
                    rows.extend(result.rows)
                    for reason, where, img_path, detail in result.skips:
                        summary.skip(reason, where, img_path, detail)
                    for reason, where, img_path, detail in result.notes:
                        summary.note(reason, where, img_path, detail)
                    bar.update(1)
        if pool is not None:
            pool.close()
    finally:
        if pool is not None:
            pool.terminate()   # after close() this only waits; after an error it stops the workers
            pool.join()
    frame = pd.DataFrame(rows, columns=COLUMNS)
    csv_path = output_dir / options.csv_name
    if options.merge and csv_path.exists():
        previous = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8")
        if "source" in previous.columns:
            previous = previous[~previous["source"].isin(sources)]
        frame = pd.concat([previous, frame.astype(str)], ignore_index=True)
    write_csv_atomic(frame, csv_path)
    summary.kept = len(rows)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.prepare_aihub",
        description=__doc__.split("\n\n")[0] + " Crops every annotation to its own file and writes "
                    "DIR/labels.csv (img_path,text,orientation,width,height,category,source,source_image,bbox).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""\
folders:
  Give one JSON_DIR IMAGE_DIR pair per category, as positional pairs or as repeated --pair; both forms
  can be mixed. JSON_DIR is searched recursively for *.json (or is one .json file). An image is looked up
  as IMAGE_DIR/file_name, then beside the JSON's relative folder, then by a unique base name anywhere
  under IMAGE_DIR. Crops go to DIR/images/<category>/<image>_<annotation>_<hash>.png, where <category> is
  JSON_DIR's name: the same input gives the same names, so a re-run overwrites its crops and rewrites the
  CSV without duplicating rows.

skips (every one counted in the summary and listed in DIR/labels.csv.bad.csv):
  expected (exit 0): illegible (text `xxx`, see --illegible), duplicate (one JSON_DIR in two pairs)
  errors (exit 1):   null_bbox, bad_bbox, bbox_outside_image (no overlap with the image), bbox_out_of_bounds
                     (partly outside, only with --out-of-bounds skip), bbox_too_small, missing_image,
                     unreadable_image, missing_text, empty_text, unknown_image_id, bad_annotation, bad_json
  A box partly outside the image is clipped by default and listed in the report as "clipped (kept)".
  Counts are annotations, except bad_json, which counts files.

exit status: 0 if nothing was skipped for an error, 1 otherwise (the CSV is written either way), 2 for
  bad arguments.

examples:
  python -m scripts.prepare_aihub data/aihub/label data/aihub/image --output resources/aihub
  python -m scripts.prepare_aihub --pair signs/json signs/jpg --pair books/json books/jpg \\
      --output resources/aihub --num-workers 8
""")
    parser.add_argument("paths", nargs="*", metavar="JSON_DIR IMAGE_DIR",
                        help="pairs of folders: AIHub JSON files, then their images")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("JSON_DIR", "IMAGE_DIR"),
                        help="one more (JSON_DIR, IMAGE_DIR) pair; repeat for several categories")
    parser.add_argument("--output", required=True, help="output folder: images/ and the CSV")
    parser.add_argument("--csv-name", default="labels.csv", help="name of the CSV inside --output")
    parser.add_argument("--out-of-bounds", choices=("clip", "skip"), default="clip",
                        help="a box partly outside its image: clip it to the image (kept, listed in the "
                             "report) or skip it as an error (default clip)")
    parser.add_argument("--vertical-ratio", type=float, default=1.5,
                        help="orientation is vertical when crop height > ratio * width (default 1.5)")
    parser.add_argument("--illegible", action="append", default=None, metavar="TEXT",
                        help="label text meaning 'unreadable', skipped as expected; repeatable (default xxx)")
    parser.add_argument("--image-format", choices=("png", "jpg"), default="png", help="crop file format")
    parser.add_argument("--num-workers", type=int, default=0,
                        help="processes decoding and cropping images (default 0: in this process)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of an existing CSV whose JSON file is not processed now "
                             "(to add categories in separate calls); otherwise the CSV is replaced")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: 0 ok, 1 some rows failed (reported), 2 a usage or input error."""
    return run_cli(parse_args, run, argv)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.paths) % 2:
        parser.error(f"positional folders come in JSON_DIR IMAGE_DIR pairs; got {len(args.paths)}: {args.paths}")
    pairs = [(args.paths[i], args.paths[i + 1]) for i in range(0, len(args.paths), 2)] + \
            [tuple(p) for p in args.pair]
    if not pairs:
        parser.error("give at least one JSON_DIR IMAGE_DIR pair (positional or --pair)")
    if args.num_workers < 0 or args.vertical_ratio <= 0:
        parser.error(f"--num-workers must be >= 0 (got {args.num_workers}) and --vertical-ratio > 0 "
                     f"(got {args.vertical_ratio})")
    args.pairs = pairs
    return args


def run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    options = AihubOptions(out_of_bounds=args.out_of_bounds, vertical_ratio=args.vertical_ratio,
                           illegible=tuple(normalize_text(t) for t in (args.illegible or ["xxx"])),
                           image_format=args.image_format, workers=args.num_workers, merge=args.merge,
                           csv_name=args.csv_name)
    summary = prepare_aihub(args.pairs, args.output, options)
    return summary.finish(Path(args.output) / args.csv_name)


if __name__ == "__main__":
    sys.exit(main())
