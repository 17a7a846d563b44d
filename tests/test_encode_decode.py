"""Encode/decode CLIs, token strings, sidecar, checkpoint loading and fingerprints (tiny random VQ-VAE)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from vqvae import decode, encode
from vqvae.checkpoint import fingerprint, load_vqvae, load_vqvae_dir, save_vqvae_dir
from vqvae.config import ModelConfig
from vqvae.encoding import encode_images, encode_paths
from vqvae.plumbing.io import load_image
from vqvae.modeling import VQVAE
from vqvae.templates import choose_template
from vqvae.tokens import grid_to_string, read_sidecar, string_to_grid

MAX_LENGTH = 100  # config/tiny/vqvae.yaml: 20 strip rows; an 8:1 test crop fits squashed, a context pair too
TINY_YAML = """\
model:
  num_codes: {num_codes}
  code_dim: 4
  downsample: 8
  hidden_channels: 8
  channel_multipliers: [1, 1, 1, 1]
  num_res_blocks: 1
  norm_groups: 4
data:
  train: unused.csv
  val: unused.csv
  max_length: {max_length}
"""
# Sizes of the crops in the tiny datasets: wide, square, tall and very wide, so several templates are used.
SIZES = [(24, 96), (40, 40), (96, 16), (20, 160), (30, 110)]


def tiny_model_config(num_codes: int = 16) -> ModelConfig:
    return ModelConfig(num_codes=num_codes, code_dim=4, downsample=8, hidden_channels=8,
                       channel_multipliers=[1, 1, 1, 1], num_res_blocks=1, norm_groups=4)


def make_tiny_run(folder: Path, num_codes: int = 16, seed: int = 0, name: str = "tiny") -> tuple[Path, Path, VQVAE]:
    """A tiny config YAML and a Lightning-layout checkpoint of a randomly initialised VQVAE."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{name}.yaml"
    config_path.write_text(TINY_YAML.format(num_codes=num_codes, max_length=MAX_LENGTH))
    torch.manual_seed(seed)
    cfg = tiny_model_config(num_codes)
    model = VQVAE(cfg).eval()
    checkpoint_path = folder / f"{name}.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "hyper_parameters": {"cfg": {"model": vars(cfg)}}}, checkpoint_path)
    return config_path, checkpoint_path, model


def write_crops(folder: Path, count: int, seed: int = 0) -> list[str]:
    """`count` random-noise crops of the SIZES (cycled); returns their file names (relative to folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(count):
        height, width = SIZES[i % len(SIZES)]
        name = f"crop{i:03d}.png"
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        names.append(name)
    return names


def write_labels(folder: Path, names: list[str], **extra_columns) -> Path:
    frame = pd.DataFrame({"img_path": names, "text": [f"word{i}" for i in range(len(names))], **extra_columns})
    path = folder / "labels.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def tiny_run(tmp_path):
    return make_tiny_run(tmp_path / "run")


def test_grid_string_round_trip():
    grid = np.array([[12, 7, 9], [4, 4, 1]])
    assert grid_to_string(grid) == "12 7 9\t4 4 1"
    np.testing.assert_array_equal(string_to_grid(grid_to_string(grid)), grid)
    with pytest.raises(ValueError, match="ragged"):
        string_to_grid("1 2\t3")
    with pytest.raises(ValueError, match="not an integer"):
        string_to_grid("1 x")


def test_encode_paths_keeps_input_order_across_template_buckets(tiny_run, tmp_path):
    _, _, model = tiny_run
    names = write_crops(tmp_path / "images", 12)
    paths = [str(tmp_path / "images" / n) for n in names]
    grids, report = encode_paths(model, paths, MAX_LENGTH, batch_size=2, num_workers=0, progress=False)
    assert len(report) == 0
    # one image at a time, no batching: the reference for every position
    expected = encode_images(model, [load_image(p) for p in paths], MAX_LENGTH, batch_size=1)
    for path, grid, want in zip(paths, grids, expected):
        width, height = load_image(path).shape[1::-1]
        template = choose_template(width, height, MAX_LENGTH)
        assert grid.shape == (template.rows, template.cols) and grid.dtype == np.int64
        np.testing.assert_array_equal(grid, want)
    # batch size, workers and sharding change nothing
    again, _ = encode_paths(model, paths, MAX_LENGTH, batch_size=5, num_workers=2, progress=False)
    shards = [encode_paths(model, paths, MAX_LENGTH, batch_size=2, num_workers=0, progress=False,
                           num_replicas=2, rank=rank)[0] for rank in range(2)]
    for i, grid in enumerate(grids):
        np.testing.assert_array_equal(again[i], grid)
        parts = [shard[i] for shard in shards if shard[i] is not None]
        assert len(parts) == 1
        np.testing.assert_array_equal(parts[0], grid)


def _code_sums(grids: np.ndarray) -> list[int]:
    return [int(grid.sum()) for grid in grids]


def _one_result(grids: np.ndarray) -> list[int]:
    return [0]


def test_encode_paths_hands_each_batch_to_then_where_it_was_encoded(tiny_run, tmp_path):
    """`then` gets each batch's int64 grids, in this process or in a loader worker, and its results stand in
    for the grids; a `then` that answers for the wrong number of crops is refused with the counts."""
    _, _, model = tiny_run
    names = write_crops(tmp_path / "images", 9)
    paths = [str(tmp_path / "images" / n) for n in names] + [str(tmp_path / "missing.png")]
    grids, _ = encode_paths(model, paths, MAX_LENGTH, batch_size=2, num_workers=0, progress=False)
    for workers in (0, 2):
        sums, report = encode_paths(model, paths, MAX_LENGTH, batch_size=2, num_workers=workers, progress=False,
                                    then=_code_sums)
        assert sums[:-1] == [int(grid.sum()) for grid in grids[:-1]] and sums[-1] is None
        assert [row["row"] for row in report.rows] == [len(paths) - 1]
    with pytest.raises(ValueError, match="gave 1 results for a batch of 2 code grids"):
        encode_paths(model, paths, MAX_LENGTH, batch_size=2, num_workers=0, progress=False, then=_one_result)


def test_encode_then_decode_cli(tiny_run, tmp_path):
    config_path, checkpoint_path, model = tiny_run
    names = write_crops(tmp_path / "data", 7)
    labels = write_labels(tmp_path / "data", names, source=["synthetic"] * 7, extra=list("abcdefg"))
    output = tmp_path / "out" / "tokens.csv"
    code = encode.main([str(config_path), str(checkpoint_path), "--dataset", str(labels), "--output", str(output),
                        "--num-workers", "0", "--no-progress"])
    assert code == 0
    frame = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["img_path", "text", "source", "extra", "visual_tokens"]
    assert frame["img_path"].tolist() == names  # as given, in input order
    assert frame["extra"].tolist() == list("abcdefg")
    assert not (output.parent / "tokens.csv.bad.csv").exists()

    meta = read_sidecar(output)
    assert meta["fingerprint"] == fingerprint(model) and len(meta["fingerprint"]) == 16
    assert (meta["num_codes"], meta["downsample"], meta["max_length"]) == (16, 8, MAX_LENGTH)
    assert "vqvae.encode" in meta["command"] and "--dataset" in meta["command"]
    assert meta["counts"]["encoded_images"] == 7 and meta["counts"]["failed_rows"] == 0

    decoded = tmp_path / "decoded"
    assert decode.main([str(config_path), str(checkpoint_path), "--tokens", str(output), "--output", str(decoded),
                        "--no-progress"]) == 0
    index = pd.read_csv(decoded / "index.csv", dtype=str, keep_default_na=False)
    assert len(index) == 7 and index["image"].is_unique
    for tokens, image_name in zip(frame["visual_tokens"], index["image"]):
        grid = string_to_grid(tokens)
        image = load_image(decoded / image_name)
        assert image.shape == (grid.shape[0] * 8, grid.shape[1] * 8, 3)
        assert grid.shape[0] * (grid.shape[1] + 1) <= MAX_LENGTH


def test_repeats_augment_and_context_pairs(tiny_run, tmp_path):
    config_path, checkpoint_path, _ = tiny_run
    names = write_crops(tmp_path / "data", 6)
    labels = write_labels(tmp_path / "data", names)
    output = tmp_path / "aug.csv"
    args = [str(config_path), str(checkpoint_path), "--dataset", str(labels), "--output", str(output),
            "--repeats", "3", "--augment", "--context-pairs", "4", "--num-workers", "0", "--no-progress"]
    assert encode.main(args) == 0
    frame = pd.read_csv(output, dtype=str, keep_default_na=False)
    plain = frame[frame["source"] != "context_pair"]
    assert len(plain) == 18 and plain["repeat"].tolist() == ["0", "1", "2"] * 6
    assert plain["img_path"].tolist() == [n for n in names for _ in range(3)]
    assert plain.groupby("img_path")["visual_tokens"].nunique().max() > 1  # repeats differ
    pairs = frame[frame["source"] == "context_pair"]
    assert len(pairs) == 4
    for img_path, text in zip(pairs["img_path"], pairs["text"]):
        first, second = img_path.split("|")
        by_path = dict(zip(names, [f"word{i}" for i in range(len(names))]))
        assert text == f"{by_path[first]} {by_path[second]}"
    # same seed, same file
    output2 = tmp_path / "aug2.csv"
    assert encode.main(args[:5] + [str(output2)] + args[6:]) == 0
    assert output.read_text() == output2.read_text()


def test_fingerprint_changes_with_weights_and_survives_save_load(tmp_path):
    model = VQVAE(tiny_model_config()).eval()
    before = fingerprint(model)
    assert fingerprint(model) == before
    save_vqvae_dir(model, tiny_model_config(), tmp_path / "vqvae", meta={"max_length": MAX_LENGTH})
    loaded = load_vqvae_dir(tmp_path / "vqvae")
    assert fingerprint(loaded) == before
    assert json.loads((tmp_path / "vqvae" / "config.json").read_text())["max_length"] == MAX_LENGTH
    images = torch.rand(2, 3, 16, 32) * 2 - 1
    torch.testing.assert_close(loaded.encode(images), model.encode(images))
    with torch.no_grad():
        next(model.decoder.parameters()).add_(1e-3)
    assert fingerprint(model) != before
    model.quantizer.steps_unused += 5  # bookkeeping, not weights
    after = fingerprint(model)
    model.quantizer.steps_unused.zero_()
    assert fingerprint(model) == after


def test_checkpoint_from_another_config_names_files_and_keys(tmp_path):
    config_path, _, _ = make_tiny_run(tmp_path / "a", num_codes=16, name="small")
    _, other_checkpoint, _ = make_tiny_run(tmp_path / "b", num_codes=32, name="big")
    with pytest.raises(ValueError) as error:
        load_vqvae(config_path, other_checkpoint)
    message = str(error.value)
    assert "small.yaml" in message and "big.ckpt" in message and "num_codes" in message
    # same check from the saved weights alone, with no hyperparameters in the checkpoint
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": torch.load(other_checkpoint)["state_dict"]}, bare)
    with pytest.raises(ValueError, match=r"quantizer\.codebook\.weight.*\(32, 4\)"):
        load_vqvae(config_path, bare)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_vqvae(config_path, tmp_path / "missing.ckpt")


def test_decode_refuses_tokens_of_another_vqvae(tiny_run, tmp_path):
    config_path, checkpoint_path, _ = tiny_run
    other_config, other_checkpoint, _ = make_tiny_run(tmp_path / "other", seed=1, name="other")
    labels = write_labels(tmp_path / "data", write_crops(tmp_path / "data", 3))
    output = tmp_path / "tokens.csv"
    assert encode.main([str(config_path), str(checkpoint_path), "--dataset", str(labels), "--output", str(output),
                        "--num-workers", "0", "--no-progress"]) == 0
    with pytest.raises(ValueError, match="re-encode"):
        decode.run(decode.parse_args([str(other_config), str(other_checkpoint), "--tokens", str(output),
                                      "--output", str(tmp_path / "dec")]))


def test_checkpoint_from_the_training_cli_encodes(tmp_path):
    """The real thing: `vqvae.train` on config/tiny/vqvae.yaml (data keys left `???`), then encode with
    that config and its last.ckpt."""
    train = pytest.importorskip("vqvae.train")
    config = Path(__file__).resolve().parents[1] / "config" / "tiny" / "vqvae.yaml"
    if not config.is_file():
        pytest.skip("config/tiny/vqvae.yaml not written yet")
    labels = write_labels(tmp_path / "data", write_crops(tmp_path / "data", 8))
    run_dir = tmp_path / "run"
    assert train.main([str(config), f"data.train={labels}", f"data.val={labels}", f"run_dir={run_dir}",
                       "trainer.max_steps=2", "trainer.val_check_interval=2", "logger.kind=csv",
                       "data.num_workers=0"]) == 0
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    model, cfg = load_vqvae(config, checkpoint)
    assert not model.training and cfg.data.max_length == MAX_LENGTH
    output = tmp_path / "tokens.csv"
    assert encode.main([str(config), str(checkpoint), "--dataset", str(labels), "--output", str(output),
                        "--num-workers", "0", "--no-progress"]) == 0
    assert read_sidecar(output)["fingerprint"] == fingerprint(model)
    # the resolved config the run saved works too
    assert fingerprint(load_vqvae(run_dir / "config.yaml", checkpoint)[0]) == fingerprint(model)


def test_a_thicker_strip_is_a_model_setting_that_encoding_follows(tmp_path):
    """model.line_codes (DESIGN §2): a VQ-VAE of 6 codes across the line encodes 6-column strips, in memory and
    from files, keeps the setting in its folder, and a folder saved before the key existed loads as 4."""
    config = tiny_model_config()
    config.line_codes = 6
    model = VQVAE(config).eval()
    image = np.full((24, 96, 3), 255, np.uint8)
    cv2.line(image, (5, 5), (90, 20), (0, 0, 0), 2)
    path = tmp_path / "crop.png"
    cv2.imwrite(str(path), image)
    (grid,) = encode_images(model, [image], MAX_LENGTH)
    template = choose_template(96, 24, MAX_LENGTH, 6)
    assert grid.shape == (template.rows, template.cols) and template.cols == 6
    (from_file,), _ = encode_paths(model, [str(path)], MAX_LENGTH, num_workers=0, progress=False)
    np.testing.assert_array_equal(from_file, grid)
    save_vqvae_dir(model, config, tmp_path / "thick", meta={"max_length": MAX_LENGTH})
    assert load_vqvae_dir(tmp_path / "thick").line_codes == 6
    # Its tokens are other grids than the same weights make on 4-code strips: another fingerprint.
    same_weights = VQVAE(tiny_model_config())
    same_weights.load_state_dict(model.state_dict())
    assert fingerprint(same_weights) != fingerprint(model) == fingerprint(load_vqvae_dir(tmp_path / "thick"))
    old = tiny_model_config()
    save_vqvae_dir(VQVAE(old), old, tmp_path / "old", meta={"max_length": MAX_LENGTH})
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    del saved["model"]["line_codes"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    assert load_vqvae_dir(tmp_path / "old").line_codes == 4
    with pytest.raises(ValueError, match="line_codes=0"):
        VQVAE(ModelConfig(**{**vars(tiny_model_config()), "line_codes": 0}))


def test_restrip_writes_the_same_weights_for_a_thicker_strip(tmp_path, capsys):
    from vqvae import restrip

    model = VQVAE(tiny_model_config()).eval()
    save_vqvae_dir(model, tiny_model_config(), tmp_path / "thin", meta={"max_length": 200})
    assert restrip.main([str(tmp_path / "thin"), str(tmp_path / "thick"), "--line-codes", "6"]) == 0
    thick = load_vqvae_dir(tmp_path / "thick")  # its recorded fingerprint matches its weights and thickness
    assert thick.line_codes == 6 and json.loads((tmp_path / "thick" / "config.json").read_text())["max_length"] == 420
    for name, weights in model.state_dict().items():
        torch.testing.assert_close(thick.state_dict()[name], weights)
    assert fingerprint(thick) != fingerprint(model)
    assert restrip.main([str(tmp_path / "thin"), str(tmp_path / "thin"), "--line-codes", "6"]) == 2
    assert "is the source folder" in capsys.readouterr().err


def test_a_folder_saved_before_line_codes_loads_with_a_config_that_has_it(tmp_path):
    """The shipped VQ-VAE's config.json predates model.line_codes; a training config (which now has it, 4) must
    still load it for encoding (make pretrain's continuations do), and another thickness must not."""
    config_path, _, model = make_tiny_run(tmp_path / "run")
    save_vqvae_dir(model, tiny_model_config(), tmp_path / "old", meta={"max_length": MAX_LENGTH})
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    del saved["model"]["line_codes"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    loaded, _ = load_vqvae(config_path, tmp_path / "old")
    assert loaded.line_codes == 4 and fingerprint(loaded) == fingerprint(model)
    thick = tiny_model_config()
    thick.line_codes = 6
    save_vqvae_dir(VQVAE(thick), thick, tmp_path / "thick", meta={"max_length": MAX_LENGTH})
    with pytest.raises(ValueError, match="model.line_codes: config 4 vs checkpoint 6"):
        load_vqvae(config_path, tmp_path / "thick")


def test_a_checkpoint_trained_before_line_codes_loads_with_a_config_that_has_it(tmp_path):
    config_path, checkpoint_path, model = make_tiny_run(tmp_path / "run")
    checkpoint = torch.load(checkpoint_path, weights_only=False)
    checkpoint["hyper_parameters"] = {"cfg": {"model": {k: v for k, v in vars(tiny_model_config()).items()
                                                        if k != "line_codes"}}}
    torch.save(checkpoint, checkpoint_path)
    loaded, _ = load_vqvae(config_path, checkpoint_path)
    assert loaded.line_codes == 4 and fingerprint(loaded) == fingerprint(model)
