"""Loading a recognition export folder (written by `python -m gpt.export`): GPT-2, tokenizer, Vocab, VQ-VAE.

An export folder holds (DESIGN §1)::

    config.json  model.safetensors  generation_config.json      Hugging Face model
    tokenizer.json  tokenizer_config.json                       Hugging Face char-level tokenizer
    charset.json                                                the Vocab (gpt.vocab)
    layout.json                                                 order, lengths, VQ-VAE fingerprint
    vqvae/config.json  vqvae/model.safetensors                  the VQ-VAE the GPT was trained with
    README.md                                                   model card

Everything inference needs is checked at load time: a missing file, a charset that does not match the
model's vocab size, a tokenizer whose ids differ from the Vocab, or a VQ-VAE other than the one recorded.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from gpt.modeling import attention_for, load_gpt2
from gpt.vocab import Vocab
from vqvae.plumbing.cli import resolve_device
from vqvae.templates import LINE_CODES

LAYOUT_NAME = "layout.json"
CHARSET_NAME = "charset.json"
VQVAE_DIR = "vqvae"
LAYOUT_VERSION = 1
# The models the project ships: the recognizer (make pretrain) is the default of every reading command, the
# drawing model (make pretrain-draw) the default of gpt.generate's prompts.
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "resources" / "models" / "ocr-ko-en"
SHIPPED_DRAW_MODEL = SHIPPED_MODEL.with_name(SHIPPED_MODEL.name + "-draw")


def model_and_inputs(arguments: list[str], default: Optional[Path] = None) -> tuple[Path, list[str]]:
    """(model folder, inputs) of a command line `[MODEL_DIR] INPUT ...`: the first argument is the model when
    it is a model folder (it holds layout.json or a Hugging Face config.json); otherwise every argument is an
    input, taken by `default` (the shipped recognizer when None). FileNotFoundError when that is needed and
    missing."""
    if arguments and any((Path(arguments[0]) / name).is_file() for name in (LAYOUT_NAME, "config.json")):
        return Path(arguments[0]), arguments[1:]
    default = SHIPPED_MODEL if default is None else default
    if not default.is_dir():
        raise FileNotFoundError(f"no model folder given and the shipped model {default} is missing: pass an "
                                f"export folder first (python -m gpt.export / gpt.finetune), or publish it with "
                                f"make pretrain (the recognizer) or make pretrain-draw (the drawing model)")
    return default, list(arguments)


MODEL_FILES = ("config.json", "model.safetensors", "generation_config.json", CHARSET_NAME, LAYOUT_NAME)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
VQVAE_FILES = (f"{VQVAE_DIR}/config.json", f"{VQVAE_DIR}/model.safetensors")


def required_files(need_tokenizer: bool = True, need_vqvae: bool = True) -> tuple[str, ...]:
    """Paths (relative to the export folder) that loading with these options reads."""
    return MODEL_FILES + (TOKENIZER_FILES if need_tokenizer else ()) + (VQVAE_FILES if need_vqvae else ())


def check_export_dir(directory: str | os.PathLike, need_tokenizer: bool = True, need_vqvae: bool = True) -> Path:
    """Raise FileNotFoundError naming every missing file if `directory` is not a complete export."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"model folder {str(directory)!r} does not exist; create one with "
                                f"`python -m gpt.export CONFIG CHECKPOINT --output DIR`")
    missing = [name for name in required_files(need_tokenizer, need_vqvae) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"model folder {str(directory)!r} lacks {missing}; it is not a complete "
                                f"export. Re-create it with `python -m gpt.export CONFIG CHECKPOINT --output "
                                f"{directory}`")
    return directory


def read_layout(directory: str | os.PathLike) -> dict[str, Any]:
    """layout.json of an export: {"order", "max_visual_length", "max_text_length", "vqvae_fingerprint",
    "max_length", "num_codes", "downsample", ...}."""
    path = Path(directory) / LAYOUT_NAME
    with open(path, encoding="utf-8") as f:
        layout = json.load(f)
    needed = ("order", "max_visual_length", "max_text_length", "vqvae_fingerprint", "max_length")
    missing = [key for key in needed if key not in layout]
    if missing:
        raise ValueError(f"{path} lacks the keys {missing}; it was written by another version of gpt.export. "
                         f"Re-export the model")
    return layout


@dataclass
class Pretrained:
    """A loaded export. `model` is in eval mode on `device`; `tokenizer` / `vqvae` are None when not loaded."""
    directory: Path
    model: GPT2LMHeadModel
    vocab: Vocab
    layout: dict[str, Any]
    tokenizer: Optional[PreTrainedTokenizerFast] = None
    vqvae: Optional[torch.nn.Module] = None

    @property
    def order(self) -> str:
        return str(self.layout["order"])

    @property
    def max_visual_length(self) -> int:
        return int(self.layout["max_visual_length"])

    @property
    def max_text_length(self) -> int:
        return int(self.layout["max_text_length"])

    @property
    def max_length(self) -> int:
        """Tokens per image the VQ-VAE encodes to (template budget, <row> tokens included)."""
        return int(self.layout["max_length"])

    @property
    def line_codes(self) -> int:
        """Codes across a line in the VQ-VAE's strips (its model.line_codes; 4 in exports made before the key)."""
        return int(self.layout.get("line_codes", LINE_CODES))

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the VQ-VAE whose tokens this GPT reads."""
        return str(self.layout["vqvae_fingerprint"])

    @property
    def undrawn_chars(self) -> frozenset[str]:
        """Charset characters this text-to-image model never saw drawn in training (layout.json's `undrawn_chars`,
        written at export): it cannot draw them, since it does not compose a syllable from its letters. Empty for
        recognizers and for exports made before the key."""
        return frozenset(self.layout.get("undrawn_chars", ""))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def require_recognition(self) -> None:
        """ValueError unless this is an image-first (recognition) model."""
        if self.order != "image_first":
            raise ValueError(f"{self.directory} holds a {self.order!r} model (text-to-image); reading images "
                             f"needs a recognition export (order 'image_first')")


def load_pretrained(directory: str | os.PathLike, device: str | torch.device = "cpu", load_tokenizer: bool = True,
                    load_vqvae: bool = True, attn_implementation: Optional[str] = None) -> Pretrained:
    """Load an export folder: model (eval mode, on `device`), Vocab from charset.json, layout.json, and
    optionally the tokenizer and the VQ-VAE (eval mode, on `device`: a torch.device or a `--device` value,
    "auto" included).

    `attn_implementation` (Hugging Face's): None picks gpt.modeling.attention_for(device).

    Raises FileNotFoundError naming missing files, ValueError when the parts do not belong together.
    """
    directory = check_export_dir(directory, need_tokenizer=load_tokenizer, need_vqvae=load_vqvae)
    layout = read_layout(directory)
    vocab = Vocab.load(directory / CHARSET_NAME)
    device = resolve_device(device)
    if attn_implementation is None:
        attn_implementation = attention_for(device)
    model = load_gpt2(directory, attn_implementation=attn_implementation)
    if model.config.vocab_size != vocab.size:
        raise ValueError(f"{directory}/config.json has vocab_size={model.config.vocab_size} but "
                         f"{CHARSET_NAME} gives {vocab.size}; the files come from different exports")
    needed_positions = int(layout["max_visual_length"]) + int(layout["max_text_length"])
    if model.config.n_positions < needed_positions:
        raise ValueError(f"{directory}/config.json has n_positions={model.config.n_positions} but layout.json "
                         f"needs {needed_positions}; the files come from different exports")
    if vocab.num_codes != int(layout.get("num_codes", vocab.num_codes)):
        raise ValueError(f"{CHARSET_NAME} has {vocab.num_codes} codes but {LAYOUT_NAME} records "
                         f"{layout['num_codes']}; the files come from different exports")
    model = model.to(device).eval()
    tokenizer = None
    if load_tokenizer:
        from gpt.hf_tokenizer import check_tokenizer_matches_vocab

        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(directory))
        check_tokenizer_matches_vocab(tokenizer, vocab)
    vqvae = None
    if load_vqvae:
        from vqvae.checkpoint import fingerprint, load_vqvae_dir

        vqvae = load_vqvae_dir(directory / VQVAE_DIR, map_location=device)
        found = fingerprint(vqvae)
        if found != layout["vqvae_fingerprint"]:
            raise ValueError(f"{directory / VQVAE_DIR} holds VQ-VAE {found!r} but the GPT was trained on tokens "
                             f"of VQ-VAE {layout['vqvae_fingerprint']!r}; re-export with the matching VQ-VAE")
        if vqvae.num_codes != vocab.num_codes:
            raise ValueError(f"the VQ-VAE has {vqvae.num_codes} codes but {CHARSET_NAME} has {vocab.num_codes}")
    return Pretrained(directory=directory, model=model, vocab=vocab, layout=layout, tokenizer=tokenizer,
                      vqvae=vqvae)
