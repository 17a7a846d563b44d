"""The GPT-2 model: a plain Hugging Face GPT2LMHeadModel sized from the vocab and the sequence layout.

Imports torch and transformers only, so the model runs in a notebook as it is.
"""
from __future__ import annotations

import inspect
import os
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor
from transformers import GPT2Config, GPT2LMHeadModel

from gpt.vocab import Vocab


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if isinstance(cfg, dict) else getattr(cfg, key, default)


# GPT-2's tanh-approximated GELU as one fused kernel: Hugging Face's default "gelu_new" computes the same formula in
# five elementwise passes; fused, a CPU reading's GPT part took 13% less time (`scripts.bench_activation`).
ACTIVATION = "gelu_pytorch_tanh"


def with_fused_activation(config: GPT2Config) -> GPT2Config:
    """`config` with Hugging Face's "gelu_new" (what exports before 2026-12-04 name) replaced by ACTIVATION, the
    same function in one kernel; any other activation is kept."""
    if config.activation_function == "gelu_new":
        config.activation_function = ACTIVATION
    return config


def load_gpt2(directory: str | os.PathLike, **kwargs: Any) -> GPT2LMHeadModel:
    """GPT2LMHeadModel.from_pretrained(directory, **kwargs), its activation fused (with_fused_activation)."""
    config = with_fused_activation(GPT2Config.from_pretrained(str(directory)))
    return GPT2LMHeadModel.from_pretrained(str(directory), config=config, **kwargs)


def gpt2_config(model_cfg: Any, vocab: Vocab, max_visual_length: int, max_text_length: int) -> GPT2Config:
    """GPT2Config with vocab_size = vocab.size and n_positions = max_visual_length + max_text_length.

    `model_cfg` holds n_layer, n_head, n_embd, dropout (a dataclass, OmegaConf node or dict).
    """
    n_embd, n_head = int(_get(model_cfg, "n_embd")), int(_get(model_cfg, "n_head"))
    if n_embd % n_head:
        raise ValueError(f"model.n_embd={n_embd} is not divisible by model.n_head={n_head}; "
                         f"pick n_head dividing n_embd (e.g. n_embd=256, n_head=4)")
    dropout = float(_get(model_cfg, "dropout", 0.0))
    return GPT2Config(
        vocab_size=vocab.size, n_positions=max_visual_length + max_text_length, n_embd=n_embd,
        n_layer=int(_get(model_cfg, "n_layer")), n_head=n_head, resid_pdrop=dropout, embd_pdrop=dropout,
        attn_pdrop=dropout, bos_token_id=vocab.bos_id, eos_token_id=vocab.eos_id, tie_word_embeddings=True,
        activation_function=ACTIVATION)
    # No pad_token_id on purpose: sequences are fixed-length and attend to their <pad>/<vpad> exactly as
    # in training, so no attention mask is needed; with a pad id set, HF would warn on every such input.
    # (vocab.pad_id is the id to give a tokenizer or a generation config.)


def build_model(model_cfg: Any, vocab: Vocab, max_visual_length: int, max_text_length: int) -> GPT2LMHeadModel:
    """A randomly initialised GPT2LMHeadModel for this vocab and layout (gradient checkpointing on if
    model_cfg.gradient_checkpointing)."""
    model = GPT2LMHeadModel(gpt2_config(model_cfg, vocab, max_visual_length, max_text_length))
    if _get(model_cfg, "gradient_checkpointing", False):
        model.gradient_checkpointing_enable()
    return model


def grow_depth(model: GPT2LMHeadModel, n_layer: int) -> GPT2LMHeadModel:
    """`model` with `n_layer` blocks that computes the same function: each old block is followed by its share of
    new blocks, each a copy of it whose two output projections (attention's and the MLP's) are zero, so a new
    block adds nothing to the residual stream until training moves those projections. Copies rather than
    random blocks: their attention and MLP inputs already mean something. Used to continue a trained model at a
    larger depth when a small model's training and held-out accuracy meet (it stops learning, not generalizing)."""
    old = len(model.transformer.h)
    if n_layer < old:
        raise ValueError(f"n_layer={n_layer} is below the model's {old} layers; a model only grows "
                         f"(set model.n_layer >= {old})")
    config = model.config.__class__.from_dict({**model.config.to_dict(), "n_layer": n_layer})
    grown = GPT2LMHeadModel(config).to(model.device)
    state = {key: value for key, value in model.state_dict().items() if not key.startswith("transformer.h.")}
    extra, target = n_layer - old, 0
    for source in range(old):
        copies = extra // old + (source < extra % old)
        for copy in range(1 + copies):
            for key, value in model.transformer.h[source].state_dict().items():
                zeroed = copy > 0 and key.rsplit(".", 1)[0] in ("attn.c_proj", "mlp.c_proj")
                state[f"transformer.h.{target}.{key}"] = torch.zeros_like(value) if zeroed else value.clone()
            target += 1
    grown.load_state_dict(state)
    grown.train(model.training)
    return grown


def with_image_positions(model: GPT2LMHeadModel, old_visual: int, new_visual: int,
                         image_first: bool = True) -> GPT2LMHeadModel:
    """`model` (an image part of `old_visual` positions, then its text; with `image_first` False, a drawing model's
    text then image part) for an image part of `new_visual`: the text positions move with the text, which starts
    at the image part's end (or stays first), so what the model learned about the text carries over; the image
    positions both have keep their embeddings and those added start as Hugging Face initialises them. For tokens
    of longer strips (a thicker line, vqvae.restrip, needs a longer max_length for the same line)."""
    if new_visual == old_visual:
        return model
    table = model.transformer.wpe.weight.detach()
    text = table.shape[0] - old_visual
    if text < 1 or new_visual < 1:
        raise ValueError(f"image part {old_visual} -> {new_visual} positions with {table.shape[0]} in all: "
                         f"the model has no text positions after its image part")
    fresh = torch.empty(new_visual + text, table.shape[1], dtype=table.dtype, device=table.device)
    fresh.normal_(0.0, model.config.initializer_range)
    kept = min(old_visual, new_visual)
    if image_first:
        fresh[:kept] = table[:kept]
        fresh[new_visual:] = table[old_visual:]
    else:  # the text's positions and the image part's first ones stay where they were
        fresh[:text + kept] = table[:text + kept]
    model.transformer.wpe = torch.nn.Embedding.from_pretrained(fresh, freeze=False)
    model.config.n_positions = new_visual + text
    return model


def with_new_codebook(model: GPT2LMHeadModel, old: Vocab, new: Vocab) -> GPT2LMHeadModel:
    """`model` (trained with the ids of `old`) for the tokens of another VQ-VAE, whose codes `new` counts: the text
    and image-special embeddings (ids below code_offset, and <vertical>) kept, the code embeddings drawn anew as
    Hugging Face initialises them, since a new codebook's code k means nothing the old code k meant. The blocks,
    positions and text embeddings carry over: what the model learned about reading a strip of codes row by row
    and about the texts, not what each code looks like. The output projection stays tied to the embeddings."""
    if old.chars != new.chars:
        raise ValueError(f"the new vocab's charset differs from the model's ({len(new.chars)} vs {len(old.chars)} "
                         f"characters): only the codebook may change")
    weights = model.get_input_embeddings().weight.detach()
    fresh = torch.empty(new.size, weights.shape[1], dtype=weights.dtype, device=weights.device)
    fresh.normal_(0.0, model.config.initializer_range)
    fresh[:new.code_offset] = weights[:old.code_offset]
    fresh[new.vertical_id] = weights[old.vertical_id]
    model.resize_token_embeddings(new.size, mean_resizing=False)
    model.get_input_embeddings().weight.data.copy_(fresh)
    model.tie_weights()
    return model


def attention_for(device: torch.device) -> str:
    """Hugging Face's attention implementation for `device`: "eager" on CPU, "sdpa" elsewhere. Measured on the
    2-core development CPU under bf16 autocast: a training step 1.6x faster for the demo GPT (4x128, 76 tokens)
    and 1.2x for the benchmark GPT (4x256, 152 tokens); one-token decoding steps 1.7x faster."""
    return "eager" if device.type == "cpu" else "sdpa"


# transformers 5 renamed the KV-cache argument and output `past_key_values` to `cache` (the old names warn and
# are announced for removal in 5.40); older releases, and simple stand-in models, only know `past_key_values`.
# `logits_to_keep=1`: decoding reads only the last position, and projecting a whole prompt onto the vocab
# costs about 10-25% of the prompt pass on CPU.
@lru_cache(maxsize=None)
def _step_arguments(model_type: type) -> tuple[str, bool]:
    parameters = inspect.signature(model_type.forward).parameters
    return ("cache" if "cache" in parameters else "past_key_values"), "logits_to_keep" in parameters


def cached_step(model: GPT2LMHeadModel, input_ids: Tensor, cache: Any, position_ids: Tensor | None = None,
                attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
    """One decoding step with the KV cache: the last position's logits (B, vocab) and the updated cache
    (pass None on the first step, with the whole prompt as `input_ids`). `position_ids` (n,): the positions
    of `input_ids` when they are not the next ones; `attention_mask` (B, cached + n): 0 on padding."""
    logits, cache = cached_forward(model, input_ids, cache, 1, position_ids, attention_mask)
    return logits[:, -1], cache


def cached_forward(model: GPT2LMHeadModel, input_ids: Tensor, cache: Any, keep: int,
                   position_ids: Tensor | None = None, attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
    """`cached_step` for n new tokens at once: the logits of their last `keep` positions (B, keep, vocab), only
    those projected onto the vocab, and the updated cache."""
    if not 1 <= keep <= input_ids.shape[1]:
        raise ValueError(f"keep={keep}: keep the logits of 1 to {input_ids.shape[1]} (the new tokens) positions")
    name, keeps_logits = _step_arguments(type(model))
    extra = {"logits_to_keep": keep} if keeps_logits else {}
    if position_ids is not None:
        extra["position_ids"] = position_ids.expand(input_ids.shape[0], -1)
    if attention_mask is not None:
        extra["attention_mask"] = attention_mask
    out = model(input_ids=input_ids, use_cache=True, **{name: cache}, **extra)
    return out.logits[:, -keep:], getattr(out, name)
