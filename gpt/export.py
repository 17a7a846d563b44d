"""Export a trained GPT as a self-contained Hugging Face folder (DESIGN §1), with its VQ-VAE inside.

    python -m gpt.export outputs/gpt/config.yaml outputs/gpt/checkpoints/best.ckpt --output outputs/gpt/export
    python -m gpt.export CONFIG CKPT --output DIR --vqvae-config VQ.yaml --vqvae-checkpoint VQ.ckpt

The folder loads with no project code::

    model = AutoModelForCausalLM.from_pretrained(DIR)
    tokenizer = AutoTokenizer.from_pretrained(DIR)   # char-level; ids equal the project's Vocab ids

and holds charset.json, layout.json (lengths, order, VQ-VAE fingerprint), the VQ-VAE in vqvae/, and a
README.md model card; see gpt/pretrained.py for the list and the loader. The VQ-VAE is found from what the
GPT checkpoint recorded (the token CSV sidecar names the VQ-VAE config and checkpoint that encoded the
data) unless --vqvae-config/--vqvae-checkpoint are given; either way its fingerprint must equal the one
the GPT was trained with. The folder is built in a temporary folder beside DIR and renamed onto it.
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd
import torch
from transformers import GenerationConfig, GPT2LMHeadModel

from gpt.hf_tokenizer import tokenizer_from_vocab
from gpt.pretrained import CHARSET_NAME, LAYOUT_NAME, LAYOUT_VERSION, VQVAE_DIR, load_pretrained
from gpt.vocab import Vocab
from vqvae.plumbing.io import write_json_atomic
from vqvae.plumbing.trainer import metrics_files
from vqvae.plumbing.cli import run_cli

log = logging.getLogger(__name__)


def generation_config(vocab: Vocab, max_text_length: int) -> GenerationConfig:
    """Greedy decoding defaults for `model.generate`: bos/eos/pad ids of the Vocab, and room for the whole
    text part (`max_new_tokens = max_text_length`: <s>, the characters and </s> when the prompt is the image
    part alone)."""
    return GenerationConfig(bos_token_id=vocab.bos_id, eos_token_id=vocab.eos_id, pad_token_id=vocab.pad_id,
                            max_new_tokens=int(max_text_length), do_sample=False, num_beams=1)


def _format_metrics(metrics: dict[str, Any]) -> str:
    if not metrics:
        return "- (no validation metrics were recorded with the checkpoint)\n"
    lines = []
    for key, value in metrics.items():
        text = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)
        lines.append(f"- `{key}`: {text}")
    return "\n".join(lines) + "\n"


def _undrawn_line(layout: dict[str, Any]) -> str:
    undrawn = layout.get("undrawn_chars")
    if not undrawn:
        return ""
    return (f"\n- never drawn in training, so refused in prompts ({len(undrawn)} characters, layout.json's "
            f"`undrawn_chars`): `` {undrawn} ``")  # doubled: the list may hold a backtick


def model_card(layout: dict[str, Any], vocab: Vocab, model: GPT2LMHeadModel, info: dict[str, Any]) -> str:
    """README.md text: what the model is, its data, training steps and validation metrics, and usage."""
    config = model.config
    num_params = sum(p.numel() for p in model.parameters())
    train = ", ".join(map(str, info.get("train", []))) or "(not recorded)"
    val = ", ".join(map(str, info.get("val", []))) or "(not recorded)"
    sample = "".join(vocab.chars[:40])
    return f"""# Inverse DALL-E OCR: {'recognition' if layout['order'] == 'image_first' else 'text-to-image'} GPT-2

A GPT-2 ({config.n_layer} layers, {config.n_head} heads, width {config.n_embd}, {num_params / 1e6:.2f} M parameters)
over VQ-VAE image tokens and characters. Sequence layout (`{layout['order']}`): image part of
{layout['max_visual_length']} ids (per row `<row>` then its codes, then `<vpad>`), text part of
{layout['max_text_length']} ids (`<s>`, characters, `</s>`, `<pad>`).

- charset: {vocab.num_chars} characters (e.g. `{sample}`), {vocab.num_codes} visual codes, vocab size {vocab.size}
- VQ-VAE (in `vqvae/`): fingerprint `{layout['vqvae_fingerprint']}`, downsampling {layout.get('downsample')},
  {layout['max_length']} tokens per image
- training data: {train}
- validation data: {val}
- training steps: {info.get('global_step', '(not recorded)')}{_undrawn_line(layout)}

## Validation metrics

{_format_metrics(info.get('metrics', {}))}
## Use

```bash
python -m gpt.read {layout.get('name', 'MODEL_DIR')} image.png           # end-to-end OCR
python -m gpt.evaluate {layout.get('name', 'MODEL_DIR')} data/test/labels.csv
```

With Hugging Face only: `AutoModelForCausalLM.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)`
(character-level; visual codes are the tokens `<c0>`, `<c1>`, ...). For recognition, the prompt is the image
part followed by `<s>`; only characters and `</s>` should be allowed after it.
"""


def _checkpoint_metrics(checkpoint: dict[str, Any], run_dir: Optional[Path]) -> dict[str, Any]:
    """Validation metrics for the card: the best score kept by ModelCheckpoint, and the last `val/` row of
    the run's CSV log when there is one."""
    metrics: dict[str, Any] = {}
    for state in (checkpoint.get("callbacks") or {}).values():
        if isinstance(state, dict) and state.get("monitor") and state.get("best_model_score") is not None:
            score = state["best_model_score"]
            metrics[f"best {state['monitor']}"] = float(score.item() if torch.is_tensor(score) else score)
    rows = []
    for log_file in metrics_files(run_dir) if run_dir else []:  # every call of a resumed run, oldest first
        with open(log_file, encoding="utf-8") as f:
            rows += [row for row in csv.DictReader(f) if any(k.startswith("val/") and v for k, v in row.items())]
    if rows:
        last = rows[-1]
        metrics["last validation step"] = last.get("step", "")
        for key, value in last.items():
            if key.startswith("val/") and value:
                try:
                    metrics[key] = float(value)
                except ValueError:
                    metrics[key] = value
    return metrics


def load_vqvae_for_export(vqvae_meta: dict[str, Any], vqvae_config: Optional[str],
                          vqvae_checkpoint: Optional[str]) -> tuple[torch.nn.Module, Any]:
    """The VQ-VAE the GPT's tokens came from: the given config + checkpoint, or those its token sidecar
    recorded. Returns (model, model config); ValueError if its fingerprint is not the recorded one."""
    from vqvae.checkpoint import fingerprint, load_vqvae

    expected = vqvae_meta.get("fingerprint")
    if (vqvae_config is None) != (vqvae_checkpoint is None):
        raise ValueError("pass both --vqvae-config and --vqvae-checkpoint, or neither")
    if vqvae_config is None:
        vqvae_config, vqvae_checkpoint = vqvae_meta.get("config"), vqvae_meta.get("checkpoint")
        if not vqvae_config or not vqvae_checkpoint or not Path(vqvae_config).exists() \
                or not Path(vqvae_checkpoint).exists():
            raise FileNotFoundError(
                f"the GPT checkpoint records VQ-VAE config {vqvae_config!r} and checkpoint {vqvae_checkpoint!r} "
                f"(fingerprint {expected!r}), which are not found from {os.getcwd()}; pass "
                f"--vqvae-config and --vqvae-checkpoint")
    model, cfg = load_vqvae(vqvae_config, vqvae_checkpoint)
    found = fingerprint(model)
    if expected is not None and found != expected:
        raise ValueError(f"VQ-VAE {vqvae_checkpoint!r} has fingerprint {found!r} but the GPT was trained on tokens "
                         f"of VQ-VAE {expected!r}; pass the VQ-VAE checkpoint that encoded the training data")
    return model, cfg.model


def write_export(output: str | os.PathLike, model: GPT2LMHeadModel, vocab: Vocab, order: str,
                 max_visual_length: int, max_text_length: int, vqvae: torch.nn.Module, vqvae_model_cfg: Any,
                 max_length: int, info: Optional[dict[str, Any]] = None, vqvae_bf16: bool = False) -> Path:
    """Write the export folder atomically (built beside `output`, then renamed onto it, replacing an
    older export). `max_length` is the tokens-per-image budget the VQ-VAE encodes to; `info` feeds the model
    card (train/val paths, global_step, metrics) and, for a text-to-image model, its layout.json's
    `undrawn_chars` (`info["undrawn_chars"]` if given, else worked out from the train CSVs and `info["init_from"]`).
    `vqvae_bf16` stores the VQ-VAE's weights rounded to bfloat16 (half the size; the export's codes are then the
    rounded weights', so evaluate the export, not the run); a VQ-VAE whose weights are bfloat16 already (loaded from
    such an export) stays so. Returns the folder's path."""
    from vqvae.checkpoint import fingerprint, save_vqvae_dir

    output = Path(output)
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"--output {str(output)!r} is a file; give a folder path")
    if model.config.vocab_size != vocab.size:
        raise ValueError(f"the model has vocab_size={model.config.vocab_size} but the Vocab gives {vocab.size}")
    if max_visual_length < max_length:
        raise ValueError(f"max_visual_length={max_visual_length} is shorter than the VQ-VAE's max_length="
                         f"{max_length}: some images would not fit the image part")
    info = dict(info or {})
    if "undrawn_chars" in info:  # carried over from the export this one moves (None: unknown)
        undrawn = info["undrawn_chars"]
    else:
        undrawn = undrawn_chars(vocab, info.get("train", []), info.get("init_from")) if order == "text_first" else None
    full, rounded = fingerprint(vqvae), fingerprint(vqvae, torch.bfloat16)
    bf16 = vqvae_bf16 or rounded == full  # asked for, or the weights are bfloat16 already (kept so)
    vqvae_dtype, vqvae_fingerprint = (torch.bfloat16, rounded) if bf16 else (torch.float32, full)
    layout = {"format_version": LAYOUT_VERSION, "order": order, "max_visual_length": int(max_visual_length),
              "max_text_length": int(max_text_length), "vqvae_fingerprint": vqvae_fingerprint,
              "max_length": int(max_length), "num_codes": int(vocab.num_codes),
              "downsample": int(vqvae.downsample), "line_codes": int(vqvae.line_codes),
              "vocab_size": int(vocab.size),
              "global_step": info.get("global_step"), "source_checkpoint": info.get("checkpoint")}
    if undrawn is not None:
        layout["undrawn_chars"] = undrawn
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        model = model.to("cpu").eval()
        model.generation_config = generation_config(vocab, max_text_length)
        model.save_pretrained(str(staging))
        tokenizer = tokenizer_from_vocab(vocab, model_max_length=max_visual_length + max_text_length)
        tokenizer.save_pretrained(str(staging))
        vocab.save(staging / CHARSET_NAME)
        write_json_atomic(layout, staging / LAYOUT_NAME)
        save_vqvae_dir(vqvae, vqvae_model_cfg, staging / VQVAE_DIR, meta={"max_length": int(max_length)},
                       dtype=vqvae_dtype)
        card = model_card({**layout, "name": str(output)}, vocab, model, info)
        (staging / "README.md").write_text(card, encoding="utf-8")
        # Load it back as users will, so a broken export never replaces a good one.
        load_pretrained(staging, load_tokenizer=True, load_vqvae=True)
        if output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".old", dir=output.parent))
            os.replace(output, old / output.name)
            os.replace(staging, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return output


def undrawn_chars(vocab: Vocab, train_csvs: Sequence[str | os.PathLike], init_from: Optional[str]) -> Optional[str]:
    """The charset characters a text-to-image run's model never saw drawn, sorted: those no text of its training
    CSVs holds, less those its init_from drawer saw (a recognizer, or no export, saw none drawn). None (unknown,
    and logged) when a training CSV is gone or the init_from drawer's export predates the key."""
    from gpt.pretrained import read_layout

    undrawn = set(vocab.chars)
    if init_from:
        layout = read_layout(init_from)
        if layout["order"] == "text_first":
            if "undrawn_chars" not in layout:
                log.warning("%s records no undrawn_chars (an older export): the new one records none either", init_from)
                return None
            undrawn = set(layout["undrawn_chars"])
    for path in train_csvs:
        if not Path(path).is_file():
            log.warning("training CSV %s is gone: the export records no undrawn_chars", path)
            return None
        texts = pd.read_csv(path, usecols=["text"], keep_default_na=False, dtype=str)["text"]
        undrawn -= set(unicodedata.normalize("NFC", "".join(texts)))
    return "".join(sorted(undrawn))


def export_checkpoint(config_path: Optional[str | os.PathLike], checkpoint_path: str | os.PathLike,
                      output: str | os.PathLike, vqvae_config: Optional[str] = None,
                      vqvae_checkpoint: Optional[str] = None, vqvae_bf16: bool = False) -> Path:
    """Export a `gpt.train` checkpoint (and the VQ-VAE its data came from) to `output` (`vqvae_bf16`: see
    write_export).

    `config_path` (the run's config.yaml) is checked against the checkpoint's own config (order, lengths
    and model size must agree); the checkpoint's copy is what is used.
    """
    from gpt.task import CHECKPOINT_KEY, GPTTask, load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    task = GPTTask.from_checkpoint(checkpoint_path)
    saved_cfg = checkpoint[CHECKPOINT_KEY]["config"]
    if config_path is not None:
        _check_config_agrees(config_path, saved_cfg, checkpoint_path)
    vqvae_meta = dict(task.vqvae_meta)
    init_from = _init_from(config_path)
    if (init_from is not None and vqvae_config is None and vqvae_checkpoint is None
            and _same_vqvae(init_from, vqvae_meta)):
        # A run started from an export on its VQ-VAE's tokens (gpt.finetune always): the VQ-VAE is the one inside
        # that export. On another VQ-VAE's tokens (gpt.train from an export, code embeddings drawn anew), the VQ-VAE
        # the token sidecar names.
        from gpt.pretrained import VQVAE_DIR, load_pretrained
        from vqvae.checkpoint import read_vqvae_dir_config

        init = load_pretrained(init_from, load_tokenizer=False)
        vqvae, vqvae_model_cfg = init.vqvae.cpu(), read_vqvae_dir_config(init.directory / VQVAE_DIR)["model"]
        max_length = init.max_length
    else:
        vqvae, vqvae_model_cfg = load_vqvae_for_export(vqvae_meta, vqvae_config, vqvae_checkpoint)
        max_length = int(vqvae_meta.get("max_length") or task.max_visual_length)
    run_dir = Path(saved_cfg["run_dir"]) if saved_cfg.get("run_dir") else None
    from gpt.config import path_list

    info = {"train": path_list(saved_cfg.get("data", {}).get("train")),
            "val": path_list(saved_cfg.get("data", {}).get("val")),
            "global_step": checkpoint.get("global_step"), "checkpoint": str(checkpoint_path), "init_from": init_from,
            "metrics": _checkpoint_metrics(checkpoint, run_dir)}
    return write_export(output, task.model, task.vocab, task.cfg.order, task.max_visual_length,
                        task.max_text_length, vqvae, vqvae_model_cfg, max_length, info, vqvae_bf16)


def _same_vqvae(init_from: str, vqvae_meta: dict[str, Any]) -> bool:
    """Whether the run's tokens come from the VQ-VAE inside its init_from export."""
    from gpt.pretrained import read_layout

    return read_layout(init_from)["vqvae_fingerprint"] == vqvae_meta.get("fingerprint")


def _init_from(config_path: Optional[str | os.PathLike]) -> Optional[str]:
    """The `init_from` export of a run's config.yaml (a gpt.finetune run's, or a gpt.train run's that started from
    an export); None without one."""
    from omegaconf import OmegaConf

    if config_path is None or not Path(config_path).is_file():
        return None
    return OmegaConf.load(config_path).get("init_from")


def _check_config_agrees(config_path: str | os.PathLike, saved: dict[str, Any], checkpoint_path: Any) -> None:
    """ValueError if the YAML config and the checkpoint's config disagree on what shapes the model."""
    from omegaconf import OmegaConf

    from gpt.config import GPTConfig
    from gpt.config import FinetuneConfig
    from vqvae.plumbing.config import load_config

    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"config {str(path)!r} does not exist; pass the run's config.yaml")
    # A gpt.finetune run's config (it has init_from) has its own keys on top of GPTConfig. Only the model
    # shape is compared, so the data paths and run folder may stay unset (e.g. config/gpt2-demo.yaml itself).
    schema = FinetuneConfig if "init_from" in OmegaConf.load(path) else GPTConfig
    given = load_config(schema, path, may_stay_unset=("data.train", "data.val", "run_dir", "init_from"))
    keys = ["order", "model.n_layer", "model.n_head", "model.n_embd", "data.max_text_length"]
    differing = []
    for key in keys:
        mine = OmegaConf.select(given, key, throw_on_missing=False)
        theirs = OmegaConf.select(OmegaConf.create(saved), key, throw_on_missing=False)
        if mine != theirs:
            differing.append(f"{key}: config {mine!r} vs checkpoint {theirs!r}")
    if differing:
        raise ValueError(f"config {str(path)!r} does not describe checkpoint {str(checkpoint_path)!r}: "
                         f"{'; '.join(differing)}. Pass the config.yaml of the run that wrote the checkpoint")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gpt.export", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("config", help="the GPT run's config.yaml (checked against the checkpoint)")
    parser.add_argument("checkpoint", help="a gpt.train or gpt.finetune checkpoint, e.g. RUN_DIR/checkpoints/best.ckpt "
                        "(a fine-tuning run takes its VQ-VAE from its init_from export)")
    parser.add_argument("--output", required=True, help="export folder to write (replaced if it exists)")
    parser.add_argument("--vqvae-config", default=None, help="VQ-VAE training config (default: the one the "
                        "token sidecar recorded)")
    parser.add_argument("--vqvae-checkpoint", default=None, help="VQ-VAE checkpoint or save_vqvae_dir folder "
                        "(default: the one the token sidecar recorded)")
    parser.add_argument("--vqvae-bf16", action="store_true", help="store the VQ-VAE's weights in bfloat16: half "
                        "the size, codes of the rounded weights (evaluate the export); make pretrain's exports do")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: 0 on success, 2 on a usage or input error (the message says the fix)."""
    return run_cli(parse_args, run, argv)


def run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    output = export_checkpoint(args.config, args.checkpoint, args.output, args.vqvae_config, args.vqvae_checkpoint,
                               args.vqvae_bf16)
    print(f"exported {args.checkpoint} to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
