"""scripts/bench.py: its rendering domain puts the crops of each orientation into one template; its overrides parse;
the steps a run trained come from its checkpoint."""
from collections import Counter

from omegaconf import OmegaConf

from scripts import bench
from scripts.render_text import main
from vqvae.plumbing.io import load_image, read_labelled_csv
from vqvae.templates import choose_template


def test_bench_domain_renders_one_template_per_orientation(tmp_path):
    assert main(["--output", str(tmp_path), "--num-samples", "40", "--seed", "3", "--num-workers", "1",
                 *map(str, bench.render_domain())]) == 0
    max_length = int(OmegaConf.load(bench.VQ_CONFIG).data.max_length)
    templates = Counter()
    rows = read_labelled_csv(tmp_path / "labels.csv")
    for path, orientation in zip(rows["abs_path"], rows["orientation"]):
        height, width = load_image(path).shape[:2]
        templates[orientation, choose_template(width, height, max_length)] += 1
    horizontal = {t for o, t in templates if o == "horizontal"}
    vertical = {t for o, t in templates if o == "vertical"}
    assert len(horizontal) == 1, templates  # one strip per orientation: one glyph scale and place
    assert len(vertical) == 1, templates


def test_sample_prompts_override_keeps_every_word_a_string():
    from gpt.config import FinetuneConfig
    from vqvae.plumbing.config import load_config

    words = ["해", "on", "123", "null", "don't"]
    cfg = load_config(FinetuneConfig, "config/gpt2-bench-finetune.yaml",
                      ["init_from=x", "data.train=t.csv", "data.val=v.csv", bench.sample_prompts_override(words)])
    assert list(cfg.samples.prompts) == words


def test_trained_steps_come_from_the_checkpoint_even_without_a_log(tmp_path):
    import torch

    from scripts.bench import trained_steps

    assert trained_steps(tmp_path) == 0
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text("step,train/loss\n0,1.0\n99,0.5\n")
    assert trained_steps(tmp_path) == 100
    (tmp_path / "checkpoints").mkdir()
    torch.save({"global_step": 5428, "state_dict": {}}, tmp_path / "checkpoints" / "last.ckpt")
    assert trained_steps(tmp_path) == 5428  # a seeded run folder: the checkpoint knows, its log does not
