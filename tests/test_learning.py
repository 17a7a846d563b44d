"""Learning tests through the real pipeline, CPU-sized: render -> vqvae.train -> vqvae.encode -> gpt.train ->
gpt.export -> gpt.evaluate reads words it never saw; gpt.finetune -> gpt.generate draws words that the
recognizer reads back from the PNGs.

The domain is tiny on purpose: every 3-letter word over the capitals A-E (125 words), 20% held out as whole
words, so a held-out word is a combination of letters at positions the training set only showed in other
words. Capitals because render_text varies the case of Latin words (lower / Title / UPPER) and capitals
stay the same under all three; DejaVu Sans Mono at one place in its line box (the demo's printed-form
setting, scripts/demo.py) because there every glyph has one scale and a fixed set of code rows.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from gpt import export, finetune, generate, train as gpt_train
from gpt.evaluate import evaluate
from gpt.pretrained import load_pretrained
from scripts.render_text import render_dataset
from scripts.words import split_words
from vqvae import encode, train as vqvae_train

ROOT = Path(__file__).resolve().parents[1]
FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono.ttf"
WORDS = ["".join(letters) for letters in itertools.product("ABCDE", repeat=3)]
# Font sizes 24-32 px vary only the anti-aliasing: every crop is scaled to one strip thickness when encoded.
RENDER = dict(fonts=[FONT], vertical_share=0.0, augment="none", words_only=True, line_box=True, min_height=24,
              max_height=32, num_workers=1, progress=False)
SEED = 0


def render(folder: Path, words: list[str], num_samples: int, seed: int) -> str:
    render_dataset(folder, num_samples, seed, words=words, **RENDER)
    return str(folder / "labels.csv")


def train_recognizer(root: Path, seed: int = SEED) -> dict:
    """The whole recognition pipeline on the tiny domain; returns the paths of its data and export."""
    train_words, held_words = split_words(WORDS, test_share=0.2, seed=seed)
    labels = {"train": render(root / "train", train_words, 400, seed),
              "val": render(root / "val", train_words, 50, seed + 1),
              "held_out": render(root / "held_out", held_words, 100, seed + 2)}
    # config/tiny/vqvae.yaml (16 codes, ~12k parameters). max_length 50 allows 10 strip rows; every word
    # here takes 7, so none is squashed and the GPT's sequences stay short.
    vq_run = root / "vqvae"
    assert vqvae_train.main([str(ROOT / "config/tiny/vqvae.yaml"), f"data.train={labels['train']}",
                             f"data.val={labels['val']}", f"run_dir={vq_run}", "data.max_length=50",
                             "data.batch_size=16", "trainer.max_steps=200", "trainer.val_check_interval=200",
                             "num_sample_images=4", f"seed={seed}"]) == 0
    tokens = {}
    for split in ("train", "val"):
        tokens[split] = str(root / split / "tokens.csv")
        assert encode.main([str(vq_run / "config.yaml"), str(vq_run / "checkpoints" / "last.ckpt"), "--dataset",
                            labels[split], "--output", tokens[split], "--num-workers", "0", "--no-progress"]) == 0
    # config/tiny/gpt2.yaml made 64 wide; image_weight 0.1 as in test_gpt_train: the steps go to reading.
    gpt_run = root / "gpt"
    assert gpt_train.main([str(ROOT / "config/tiny/gpt2.yaml"), f"data.train={tokens['train']}",
                           f"data.val={tokens['val']}", f"run_dir={gpt_run}", "data.max_text_length=5",
                           "data.batch_size=32", "model.n_embd=64", "optim.warmup_steps=20", "loss.image_weight=0.1",
                           "trainer.max_steps=400", "trainer.val_check_interval=400",
                           "validation.num_decode_samples=0", f"seed={seed}"]) == 0
    assert export.main([str(gpt_run / "config.yaml"), str(gpt_run / "checkpoints" / "last.ckpt"), "--output",
                        str(root / "export")]) == 0
    return {"root": root, "labels": labels, "tokens": tokens, "export": root / "export", "held_words": held_words}


def read_accuracy(export_dir: Path, labels_csv: str) -> float:
    """Exact accuracy of gpt.evaluate's reading (image files -> VQ-VAE -> GPT) on a labelled CSV."""
    table, _, _ = evaluate(load_pretrained(export_dir), [labels_csv], progress=False)
    return float(table["accuracy"].iloc[-1])


def draw_and_read_back(recognizer: dict, run_dir: Path, seed: int = SEED) -> tuple[float, float]:
    """Fine-tune the recognizer in reverse, draw each held-out word 8 times (gpt.generate, reranked by the
    recognizer) and read the best PNGs back with gpt.evaluate. Returns (share of held-out words whose best
    candidate the recognizer reads back from its tokens, share read back from the PNG files)."""
    tokens = recognizer["tokens"]
    assert finetune.main([str(ROOT / "config/tiny/gpt2-finetune.yaml"), f"init_from={recognizer['export']}",
                          f"data.train={tokens['train']}", f"data.val={tokens['val']}", f"run_dir={run_dir}",
                          "data.max_text_length=5", "trainer.max_steps=1000", "trainer.val_check_interval=1000",
                          "samples.prompts=[ABC]", "samples.every_n_steps=0", f"seed={seed}"]) == 0
    output = run_dir / "drawn"
    prompts = recognizer["held_words"]
    assert generate.main([str(run_dir / "export"), *prompts, "--output", str(output), "--rerank-with",
                          str(recognizer["export"]), "--num-candidates", "8", "--temperature", "0.5",
                          "--guidance-scale", "2.0", "--seed", str(seed), "--no-progress"]) == 0
    results = pd.read_csv(output / "results.csv", keep_default_na=False)
    best = results[results["is_best"]]
    assert sorted(best["prompt"]) == sorted(prompts)  # every prompt drew at least one decodable image
    pd.DataFrame({"img_path": best["path"], "text": best["prompt"]}).to_csv(output / "best.csv", index=False)
    return float(best["exact"].mean()), read_accuracy(recognizer["export"], str(output / "best.csv"))


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory) -> dict:
    return train_recognizer(tmp_path_factory.mktemp("learning"))


@pytest.mark.slow
def test_recognizer_reads_held_out_words(recognizer):
    """Exact accuracy on 100 crops of the 25 held-out words, read from the PNG files: measured 85%, 94%, 80%
    for seeds 0, 1, 2 (85%, 93% for seeds 3, 4; training words 99.8-100%). The same pipeline trained on
    shuffled labels read 1% (seed 0); guessing reads 1 in 125. Bar: 60%."""
    accuracy = read_accuracy(recognizer["export"], recognizer["labels"]["held_out"])
    assert accuracy >= 0.6, f"read {accuracy:.0%} of the held-out crops exactly"


@pytest.mark.slow
def test_reverse_finetuning_draws_held_out_words_it_reads_back(recognizer, tmp_path):
    """The best of 8 drawings of each of the 25 held-out words (never drawn, never read in training), judged
    by the recognizer of the test above. Read from the drawn tokens (gpt.generate's reranking): measured
    100%, 100%, 64% for seeds 0, 1, 2 (84%, 100% for seeds 3, 4); read from the PNG files through the VQ-VAE
    again: 92%, 84%, 48% (52%, 80%). Fine-tuned on shuffled labels: 0% and 0% (seed 0). Bars: 50% and 30%."""
    from_tokens, from_pixels = draw_and_read_back(recognizer, tmp_path / "finetune")
    assert from_tokens >= 0.5, f"the recognizer read back {from_tokens:.0%} of the drawn held-out words' tokens"
    assert from_pixels >= 0.3, f"the recognizer read back {from_pixels:.0%} of the drawn held-out words' PNGs"
