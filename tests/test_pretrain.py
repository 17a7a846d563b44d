"""make pretrain continuing the published model in a new folder counts on from it (scripts/pretrain.py)."""
import json

import pytest

from scripts import pretrain
from scripts.pipeline import StepFailed


def test_continuation_counts_on_from_the_published_model_it_started_from(tmp_path, monkeypatch):
    published = tmp_path / "published"
    published.mkdir()
    row = {"chunk": 19, "steps": 80000, "distinct_crops": 800000, "cpu_hours": 9.5, "vq_steps": 2000,
           "accuracy": {"heldout_en": 0.5}}
    (published / "metrics.json").write_text(json.dumps({**row, "held_out_score": 0.5, "results": []}))
    monkeypatch.setattr(pretrain, "PUBLISHED", published)
    out = tmp_path / "run"
    out.mkdir()

    assert pretrain.continued_row(out, from_published=True) == {k: v for k, v in row.items() if k != "accuracy"}
    # Publishing a chunk of this folder replaces the published model: the folder keeps counting from the first.
    (published / "metrics.json").write_text(json.dumps({**row, "chunk": 21, "held_out_score": 0.6, "results": []}))
    assert pretrain.continued_row(out, from_published=True)["chunk"] == 19
    # A lineage with GPU time (scripts/publish_continuation.py --gpu) keeps counting it.
    (published / "metrics.json").write_text(json.dumps({**row, "gpu_hours": 0.079, "gpu": "NVIDIA H200",
                                                        "held_out_score": 0.6, "results": []}))
    (tmp_path / "run2").mkdir()
    gpu_row = pretrain.continued_row(tmp_path / "run2", from_published=True)
    assert (gpu_row["gpu_hours"], gpu_row["gpu"]) == (0.079, "NVIDIA H200")


def test_a_fresh_run_counts_from_zero(tmp_path):
    row = pretrain.continued_row(tmp_path, from_published=False)
    assert (row["chunk"], row["steps"], row["distinct_crops"], row["cpu_hours"]) == (-1, 0, 0, 0.0)


def test_drawing_continuation_counts_on_from_the_published_drawing_model(tmp_path, monkeypatch):
    from scripts import pretrain_draw

    published = tmp_path / "draw"
    published.mkdir()
    (published / "metrics.json").write_text(json.dumps({"steps": 40621, "cpu_hours": 3.67, "held_out_score": 0.5}))
    monkeypatch.setattr(pretrain_draw, "SHIPPED_DRAW_MODEL", published)
    run_dir = tmp_path / "out" / "run"
    assert pretrain_draw.continued_draw_row(tmp_path / "out", run_dir) == {"steps": 40621, "cpu_hours": 3.67}
    (published / "metrics.json").write_text(json.dumps({"steps": 50000, "cpu_hours": 4.5, "held_out_score": 0.6}))
    assert pretrain_draw.continued_draw_row(tmp_path / "out", run_dir)["steps"] == 40621
    # A folder that already trains its own drawing run (from the recognizer) counts from zero.
    (tmp_path / "fresh" / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "fresh" / "run" / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert pretrain_draw.continued_draw_row(tmp_path / "fresh", tmp_path / "fresh" / "run")["steps"] == 0


def test_a_fresh_run_is_remembered_and_never_mixed_with_a_continuation(tmp_path):
    out = tmp_path / "out"
    assert not pretrain.fresh_run(out, fresh=False)
    assert pretrain.fresh_run(out, fresh=True) and pretrain.fresh_run(out, fresh=False)  # later calls go on with it
    continued = tmp_path / "continued"
    continued.mkdir()
    (continued / "continues.json").write_text("{}")
    with pytest.raises(StepFailed, match="already continues the published model"):
        pretrain.fresh_run(continued, fresh=True)


def test_continuations_encode_with_the_published_vqvae_whatever_the_recipe_now_says(tmp_path, monkeypatch):
    from vqvae.checkpoint import load_vqvae, save_vqvae_dir
    from vqvae.config import ModelConfig
    from vqvae.modeling import VQVAE

    # A published VQ-VAE of another size than config/vqvae-pretrain.yaml's recipe, as after a change of recipe.
    model_cfg = ModelConfig(num_codes=64, code_dim=8, downsample=8, hidden_channels=8,
                            channel_multipliers=[1, 2, 2, 2], num_res_blocks=1, norm_groups=4)
    published = tmp_path / "published"
    save_vqvae_dir(VQVAE(model_cfg), model_cfg, published / "vqvae", meta={"max_length": 120})
    monkeypatch.setattr(pretrain, "PUBLISHED", published)
    with pytest.raises(ValueError, match="num_codes"):
        load_vqvae(pretrain.VQ_CONFIG, published / "vqvae")

    model, cfg = load_vqvae(pretrain.published_vq_config(tmp_path), published / "vqvae")
    assert model.num_codes == 64 and cfg.data.max_length == 120


def test_keys_an_older_vqvae_folder_leaves_out_take_the_model_defaults_not_the_recipes(tmp_path):
    from omegaconf import OmegaConf

    from vqvae.checkpoint import load_vqvae, save_vqvae_dir
    from vqvae.config import ModelConfig
    from vqvae.modeling import VQVAE
    from vqvae.templates import LINE_CODES

    model_cfg = ModelConfig(num_codes=64, code_dim=8, downsample=8, hidden_channels=8,
                            channel_multipliers=[1, 2, 2, 2], num_res_blocks=1, norm_groups=4)
    folder = tmp_path / "older" / "vqvae"
    save_vqvae_dir(VQVAE(model_cfg), model_cfg, folder, meta={"max_length": 200})
    config = json.loads((folder / "config.json").read_text())
    del config["model"]["line_codes"], config["model"]["encoder_channels"]  # saved before those keys existed
    (folder / "config.json").write_text(json.dumps(config))
    assert OmegaConf.load(pretrain.VQ_CONFIG).model.line_codes != LINE_CODES  # the recipe's is not the default

    path = pretrain.published_vq_config(tmp_path, folder, "older-vqvae.yaml")
    assert path == tmp_path / "older-vqvae.yaml"
    model, cfg = load_vqvae(path, folder)
    assert cfg.model.line_codes == LINE_CODES and cfg.model.encoder_channels is None and cfg.data.max_length == 200


def test_each_chunk_renders_its_own_crops_in_training_fonts_without_held_out_words(tmp_path):
    from scripts.publish_continuation import shard_number
    from scripts.render_text import build_parser

    args = [str(a) for a in pretrain.shard_render_args(tmp_path, 44)]
    flags = dict(zip(args[::2], args[1::2]))
    assert flags["--output"] == str(tmp_path / "data" / "shard_044")
    assert shard_number(tmp_path / "data" / "shard_044") == 44  # how a continuation finds the chunks it trained on
    assert flags["--fonts"] == str(tmp_path / "fonts" / "train")
    assert flags["--exclude-words"] == str(tmp_path / "data" / "heldout_words_all.txt")
    assert flags["--augment"] == "heavy"  # the training shards only: the held-out sets stay at the default
    parsed = build_parser().parse_args(args)  # the renderer takes every argument as make pretrain passes it
    assert (parsed.augment, parsed.seed, parsed.num_samples, parsed.syllable_share, parsed.tight_share) == (
        "heavy", 144, 40000, 0.2, 0.25)
    seeds = {pretrain.shard_render_args(tmp_path, chunk)[5] for chunk in range(40, 50)}
    assert len(seeds) == 10 and flags["--seed"] == "144"


def test_a_shard_trains_with_its_augmented_encoding_where_it_has_one(tmp_path):
    old, new = tmp_path / "shard_051", tmp_path / "shard_053"
    for shard in (old, new):
        shard.mkdir()
        (shard / "tokens.csv").write_text("")
    (new / pretrain.AUGMENTED_TOKENS).write_text("")
    assert pretrain.shard_encodings(old) == [old / "tokens.csv"]
    assert pretrain.shard_encodings(new) == [new / "tokens.csv", new / "tokens-augmented.csv"]


def test_font_folders_hold_exactly_their_part_of_the_split(tmp_path, monkeypatch):
    from scripts.broad_fonts import split_fonts

    names = ["LobsterTwo-Regular.ttf", "Lobster-Regular.ttf", "Teko[wght].ttf", "Roboto-Bold.ttf", "Lato-Light.ttf",
             *(f"Text{i}-Regular.ttf" for i in range(20))]
    (tmp_path / "files").mkdir()
    files = [tmp_path / "files" / name for name in names]
    for path in files:
        path.write_bytes(b"")
    split = split_fonts(files)
    assert [p.name for p in split.held_out_display] == ["Lobster-Regular.ttf", "Teko[wght].ttf"]
    assert [p.name for p in split.held_out] == ["Roboto-Bold.ttf", "Lato-Light.ttf"]
    assert len(split.train) == 21 and "LobsterTwo-Regular.ttf" in {p.name for p in split.train}
    # A folder linked before Lobster was held out (session 44's first render) loses that link.
    (tmp_path / "fonts" / "train").mkdir(parents=True)
    (tmp_path / "fonts" / "train" / "Lobster-Regular.ttf").symlink_to(files[1])
    monkeypatch.setattr(pretrain, "split_fonts", lambda: split)
    folders = pretrain.link_fonts(tmp_path / "fonts")
    assert [sorted(p.name for p in folder.iterdir()) for folder in folders] == [
        sorted(p.name for p in part) for part in split]
