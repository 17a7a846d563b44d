"""Publish an export to resources/models/<name>/ with a model card, only when it scores better.

Called by `make pretrain` (the recognizer, scripts/pretrain.py --publish) and `make pretrain-draw` (the
drawing model, scripts/pretrain_draw.py --publish). The published folder is the export itself (Hugging Face
weights as safetensors, tokenizer, generation config, charset, the VQ-VAE in vqvae/) plus `README.md` (the
model card: data, steps, CPU-hours, per-set figures, known limits) and `metrics.json`, which the next call
compares against: every published version stays in git history, so a version that does not beat the
held-out score of the one before is not written.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from vqvae.plumbing.io import write_json_atomic

MAX_FILE_BYTES = 25_000_000  # every published version is at most 25 MB (DEVELOPERS.md)


def published_score(target: Path) -> float | None:
    metrics = target / "metrics.json"
    return json.loads(metrics.read_text())["held_out_score"] if metrics.is_file() else None


def continued_counts(record: Path, published: Path, keys: tuple[str, ...]) -> dict:
    """The counts (`keys` of `published`'s metrics.json, those it has: GPU-hours came later) a run folder
    continues from: read at the folder's first call and kept in `record`, since publishing from the folder later
    replaces the published model."""
    if record.is_file():
        return json.loads(record.read_text())
    metrics = json.loads((published / "metrics.json").read_text())
    row = {key: metrics[key] for key in keys if key in metrics}
    write_json_atomic(row, record)
    return row


def display_line(evaluation: dict, run_info: dict) -> str:
    """The card's line on heldout_en_display, where the evaluation scored it (scripts.pretrain.DISPLAY_SET)."""
    if not any(r["dataset"] == "heldout_en_display" for r in evaluation["results"]):
        return ""
    return (f"`heldout_en_display` holds heldout_en's texts in display families never used in training either "
            f"({run_info['display_fonts']}); it is not in the held-out mean.\n")


def model_card(entry: dict, score: float, evaluation: dict, run_info: dict) -> str:
    """README.md of the published model (`run_info["history"]`: how this version was trained, when not by
    make pretrain's own chunks)."""
    rows = "\n".join(f"| {r['dataset']} | {r['samples']} | {100 * r['accuracy']:.1f}% | {r['one_minus_ned']:.3f} | "
                     f"{r['cer']:.3f} |" for r in evaluation["results"])
    gpu = (f"and {entry['gpu_hours']} GPU-hours ({entry['gpu']})" if entry.get("gpu_hours") else "no GPU")
    trained = "on CPU for hours and on a GPU for minutes" if entry.get("gpu_hours") else "on CPU for minutes to hours"
    return f"""# ocr-ko-en: broad-domain Korean + English recognizer (Inverse DALL-E OCR)

The default model of `python -m gpt.read`, `gpt.evaluate` and `make serve`. A VQ-VAE turns each crop
into a strip of codes (grey, dark on light, {run_info.get('line_codes', 4)} codes across its line, horizontal lines
turned a quarter: DESIGN.md §2) and a GPT-2 reads the text after them. Horizontal and vertical lines, Korean,
English, digits and punctuation.

## Training (`make pretrain`, scripts/pretrain.py)
- data: {entry['distinct_crops']:,} distinct rendered crops (new shard of {run_info['shard_size']:,} every chunk),
  Korean and English words, phrases, numbers, punctuation and mixed sign text, 30% vertical, in
  {run_info['train_fonts']} font files (pip Google Fonts families, Noto Sans CJK, Noto Serif KR; Debian Hangul
  fonts), with colours, backgrounds, blur, noise, JPEG, rotation, perspective, tight and loose crops,
  condensed and extended lettering, frames (Korean plate numbers always framed), some cropped with what
  surrounds the frame (renders since 2026-12-03); 5% of each language's words never rendered for training
- GPT steps: {entry['steps']:,} (batch 32, unless this version's line says otherwise), chunk {entry['chunk']};
  VQ-VAE: {run_info['vq_codes']:,} codes, {run_info['vq_steps']:,} steps (GPT steps, crops and CPU-hours count over the
  model's whole lineage: a `--fresh` run moves the published GPT onto its new VQ-VAE's codes and counts on from it)
- GPT-2: {run_info['gpt_size']}
- compute: {entry['cpu_hours']} CPU-hours (wall hours x cores, rendering and encoding included), {gpu}
{run_info.get('history', '')}
## Accuracy (exact match, case-sensitive, spaces ignored; `gpt.evaluate --ignore-space`)
Held-out sets: held-out words in font families never used in training ({run_info['heldout_fonts']}); each
`_tight` set holds the same texts in the same fonts cut at their ink, as tight detector boxes cut them.
{display_line(evaluation, run_info)}The `real_*` sets are photographed crops (`../shared/eval/real`, evaluation only).

| set | crops | exact | 1-NED | CER |
|---|---|---|---|---|
{rows}

Held-out mean (what publishing compares): {100 * score:.1f}%.

## Known limits
- Trained {trained}: accuracy was still rising when training stopped (see the learning
  curve in BENCHMARKS.md); long words and phrases read worse than short ones.
- One line of text per crop; no detection. A crop far longer than 10:1 is squashed, beyond 30:1 refused.
- Real photographs differ from rendered text (lighting, blur, clutter); see the `real_*` rows.
- It writes only its charset: printable ASCII, a few signs and the Hangul syllables of make pretrain's Korean word
  pool, fixed at chunk 0. A word with another syllable cannot be read exactly;
  `python -m scripts.bench_charset_coverage` counts them and how much running text they are (BENCHMARKS.md).

## Use
```bash
python -m gpt.read photo.png                     # this model is the default
python -m gpt.read photo.png --votes 4           # read 4 times and vote: more accurate, 4x the time (BENCHMARKS.md)
python -m gpt.evaluate data/test/labels.csv --ignore-space
```
With Hugging Face only: `AutoModelForCausalLM.from_pretrained(DIR)`; the prompt is the image part then
`<s>` with `attention_mask` 0 on `<vpad>` and `position_ids` 0..n-1 (see the export's layout.json).
"""


def recognizer_card(entry: dict, score: float, evaluation: dict, shard_size: int,
                    history: str = "") -> tuple[str, dict]:
    """(model card, metrics.json) of a recognizer export (`entry`, a make pretrain curve.json row; `evaluation`,
    gpt.evaluate's JSON of it)."""
    from scripts.broad_fonts import split_fonts

    train_fonts, held_fonts, display_fonts = split_fonts()

    def families(files: list[Path]) -> str:
        return ", ".join(sorted({p.name.split("-")[0].split("[")[0].split("_")[0].replace(".ttf", "") for p in files}))

    vq_codes = json.loads((Path(entry["export"]) / "vqvae" / "config.json").read_text())["model"]["num_codes"]
    gpt = json.loads((Path(entry["export"]) / "config.json").read_text())
    layout = json.loads((Path(entry["export"]) / "layout.json").read_text())
    run_info = {"shard_size": shard_size, "train_fonts": len(train_fonts), "heldout_fonts": families(held_fonts),
                "display_fonts": families(display_fonts),
                "vq_steps": entry["vq_steps"], "vq_codes": vq_codes, "history": history,
                "line_codes": layout.get("line_codes", 4),
                "gpt_size": f"{gpt['n_layer']} layers x {gpt['n_embd']} wide, {gpt['n_head']} heads"}
    metrics = {"held_out_score": score, **entry, "results": evaluation["results"]}
    return model_card(entry, score, evaluation, run_info), metrics


def same_tensors(a: Path, b: Path) -> bool:
    """Whether two safetensors files hold the same tensors and metadata. Their bytes can differ where these do
    not: safetensors writes the metadata in a hash map's order, which changes from one process to the next."""
    import torch
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(a, "pt") as first, safe_open(b, "pt") as second:
            return (first.metadata() == second.metadata() and set(first.keys()) == set(second.keys())
                    and all(torch.equal(first.get_tensor(k), second.get_tensor(k)) for k in first.keys()))
    except (SafetensorError, OSError):
        return False


def keep_unchanged_weights(staged: Path, target: Path) -> None:
    """Put the published bytes back for every weights file whose tensors did not change (the VQ-VAE, when only the
    GPT trained), so that git records no new version of it."""
    for new in staged.rglob("*.safetensors"):
        old = target / new.relative_to(staged)
        if old.is_file() and same_tensors(new, old):
            shutil.copyfile(old, new)


def publish_if_better(export: Path, target: Path, score: float, card: str, metrics: dict,
                      baseline: float | None = None) -> bool:
    """Copy `export` to `target` with `card` (README.md) and `metrics` (metrics.json, its "held_out_score" is
    `score`) when `score` beats the published one's: its metrics.json's, or `baseline`, its score measured
    anew on the sets `score` comes from. True if published."""
    before = published_score(target) if baseline is None else baseline
    if before is not None and score <= before:
        print(f"not published: held-out score {100 * score:.1f}% does not beat the published {100 * before:.1f}%")
        return False
    big = [p for p in export.rglob("*") if p.is_file() and p.stat().st_size > MAX_FILE_BYTES]
    pickles = [p for p in export.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    if big or pickles:
        raise ValueError(f"{export} holds files over 25 MB {big} or pickles {pickles}: not publishable")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent if target.parent.exists() else None))
    try:
        shutil.copytree(export, staging / "model")
        keep_unchanged_weights(staging / "model", target)
        (staging / "model" / "README.md").write_text(card, encoding="utf-8")
        metrics = {**metrics, "held_out_score": score}
        (staging / "model" / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staging / "model"), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"published {export} to {target}: held-out score {100 * score:.1f}% (before: "
          f"{'none' if before is None else f'{100 * before:.1f}%'})")
    return True
