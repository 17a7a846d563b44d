"""gpt.export / gpt.pretrained / gpt.hf_tokenizer: the folder loads with plain Hugging Face, ids match the Vocab."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gpt.export import export_checkpoint, main as export_main, write_export
from gpt.hf_tokenizer import tokenizer_from_vocab
from gpt.pretrained import load_pretrained
from gpt.task import GPTTask
from gpt.vocab import Vocab
from vqvae.checkpoint import fingerprint, save_vqvae_dir
from vqvae.config import ModelConfig
from vqvae.modeling import VQVAE

TINY_VQVAE = ModelConfig(num_codes=16, code_dim=4, downsample=8, hidden_channels=4, channel_multipliers=[1, 1, 2, 2],
                         num_res_blocks=1, norm_groups=4)
TINY_GPT = {"n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0}
MAX_LENGTH, MAX_TEXT_LENGTH = 100, 12  # config/tiny/vqvae.yaml's max_length
TEXTS = ["hello", "world", "한국어", "abc 123"]


def build_parts(seed: int = 0, max_text_length: int = MAX_TEXT_LENGTH):
    """A random tiny VQ-VAE and a tiny recognition GPTTask trained on nothing (plumbing only)."""
    torch.manual_seed(seed)
    vqvae = VQVAE(TINY_VQVAE).eval()
    vocab = Vocab.build(TEXTS, TINY_VQVAE.num_codes)
    cfg = {"data": {"train": "train.csv", "val": "val.csv", "max_text_length": max_text_length},
           "model": TINY_GPT, "run_dir": "unused"}
    meta = {"fingerprint": fingerprint(vqvae), "num_codes": TINY_VQVAE.num_codes, "downsample": 8,
            "max_length": MAX_LENGTH}
    task = GPTTask(cfg, vocab, MAX_LENGTH, max_text_length, meta)
    return vqvae, task


def build_export(directory: Path, seed: int = 0, max_text_length: int = MAX_TEXT_LENGTH) -> Path:
    """Write a complete export of random tiny models to `directory` (through gpt.export's writer)."""
    vqvae, task = build_parts(seed, max_text_length)
    return write_export(directory, task.model, task.vocab, "image_first", MAX_LENGTH, max_text_length, vqvae,
                        TINY_VQVAE, MAX_LENGTH, {"train": ["train.csv"], "global_step": 0})


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    return build_export(tmp_path_factory.mktemp("export") / "model")


def test_hugging_face_reload_gives_identical_logits(export_dir):
    _, task = build_parts()
    model = AutoModelForCausalLM.from_pretrained(export_dir).eval()
    ids = torch.randint(0, task.vocab.size, (2, MAX_LENGTH + MAX_TEXT_LENGTH))
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, task.model.eval()(ids).logits, rtol=0, atol=0)
    generation = json.loads((export_dir / "generation_config.json").read_text())
    assert (generation["bos_token_id"], generation["eos_token_id"], generation["pad_token_id"]) == (
        task.vocab.bos_id, task.vocab.eos_id, task.vocab.pad_id)
    assert generation["max_new_tokens"] == MAX_TEXT_LENGTH


def test_tokenizer_ids_equal_vocab_ids_and_round_trip(export_dir):
    vocab = Vocab.load(export_dir / "charset.json")
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    assert tokenizer.convert_ids_to_tokens(list(range(vocab.size))) == vocab.tokens()
    assert tokenizer.convert_tokens_to_ids(["<row>", "<vpad>", "<c0>", "<c15>"]) == [
        vocab.row_id, vocab.vpad_id, vocab.code_id(0), vocab.code_id(15)]
    for text in TEXTS:
        ids = tokenizer(text)["input_ids"]
        assert ids == vocab.text_part(text, len(text) + 2)  # <s> chars </s>, same ids as the Vocab
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer("hello!", add_special_tokens=False)["input_ids"][-1] == vocab.unk_id
    image = tokenizer("<row><c3><c4><row><c5><c6><vpad>", add_special_tokens=False)["input_ids"]
    assert image == [vocab.row_id, vocab.code_id(3), vocab.code_id(4), vocab.row_id, vocab.code_id(5),
                     vocab.code_id(6), vocab.vpad_id]


def test_tokenizer_refuses_a_vocab_with_other_ids():
    vocab, other = Vocab.build(["ab"], 16), Vocab.build(["abc"], 16)
    from gpt.hf_tokenizer import check_tokenizer_matches_vocab

    with pytest.raises(ValueError, match="differ from the Vocab"):
        check_tokenizer_matches_vocab(tokenizer_from_vocab(vocab), other)


def test_layout_and_vqvae_in_the_folder(export_dir):
    pretrained = load_pretrained(export_dir)
    layout = json.loads((export_dir / "layout.json").read_text())
    assert layout["max_visual_length"] == MAX_LENGTH and layout["max_text_length"] == MAX_TEXT_LENGTH
    assert layout["order"] == "image_first" and layout["max_length"] == MAX_LENGTH
    assert layout["line_codes"] == pretrained.line_codes == pretrained.vqvae.line_codes == 4
    assert fingerprint(pretrained.vqvae) == layout["vqvae_fingerprint"] == fingerprint(build_parts()[0])
    assert "training steps: 0" in (export_dir / "README.md").read_text()


def test_missing_files_are_named(export_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(export_dir, broken)
    (broken / "tokenizer.json").unlink()
    (broken / "vqvae" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['tokenizer.json', 'vqvae/model.safetensors'\]"):
        load_pretrained(broken)
    load_pretrained(broken, load_tokenizer=False, load_vqvae=False)  # what predict needs is still there
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(tmp_path / "nowhere")


def test_swapped_vqvae_is_refused(export_dir, tmp_path):
    swapped = tmp_path / "swapped"
    shutil.copytree(export_dir, swapped)
    torch.manual_seed(123)
    save_vqvae_dir(VQVAE(TINY_VQVAE), TINY_VQVAE, swapped / "vqvae")
    with pytest.raises(ValueError, match="trained on tokens of VQ-VAE"):
        load_pretrained(swapped)


def test_export_cli_from_checkpoint(tmp_path, capsys):
    vqvae, task = build_parts()
    save_vqvae_dir(vqvae, TINY_VQVAE, tmp_path / "vq")
    vq_config = tmp_path / "vq.yaml"
    vq_config.write_text("model:\n  num_codes: 16\n  code_dim: 4\n  downsample: 8\n  hidden_channels: 4\n"
                         "  channel_multipliers: [1, 1, 2, 2]\n  num_res_blocks: 1\n  norm_groups: 4\n"
                         "data:\n  train: t.csv\n  val: v.csv\n  max_length: 100\n")
    checkpoint = tmp_path / "last.ckpt"
    torch.save({"state_dict": task.state_dict(), "gpt": task.checkpoint_meta(), "global_step": 5}, checkpoint)
    gpt_config = tmp_path / "gpt.yaml"
    gpt_config.write_text("model:\n  n_layer: 2\n  n_head: 2\n  n_embd: 32\ndata:\n  max_text_length: 12\n")
    output = tmp_path / "out"
    # The checkpoint records no VQ-VAE paths: the flags are required, and the message says so.
    assert export_main([str(gpt_config), str(checkpoint), "--output", str(output)]) == 2
    assert "--vqvae-checkpoint" in capsys.readouterr().err
    args = [str(gpt_config), str(checkpoint), "--output", str(output), "--vqvae-config", str(vq_config),
            "--vqvae-checkpoint", str(tmp_path / "vq")]
    assert export_main(args) == 0
    assert load_pretrained(output).model.config.n_layer == 2
    assert export_main(args) == 0  # replaces an existing export
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging folders left
    # Another VQ-VAE than the one the tokens came from is refused, naming both fingerprints.
    torch.manual_seed(7)
    save_vqvae_dir(VQVAE(TINY_VQVAE), TINY_VQVAE, tmp_path / "other")
    with pytest.raises(ValueError, match=f"trained on tokens of VQ-VAE '{fingerprint(vqvae)}'"):
        export_checkpoint(gpt_config, checkpoint, tmp_path / "out2", str(vq_config), str(tmp_path / "other"))
    # The VQ-VAE the token sidecar recorded (config + checkpoint paths) is found without the flags.
    task.vqvae_meta.update(config=str(vq_config), checkpoint=str(tmp_path / "vq"))
    torch.save({"state_dict": task.state_dict(), "gpt": task.checkpoint_meta(), "global_step": 6}, checkpoint)
    assert export_main([str(gpt_config), str(checkpoint), "--output", str(output)]) == 0
    assert json.loads((output / "layout.json").read_text())["global_step"] == 6
    # A config describing another model is refused.
    gpt_config.write_text("model:\n  n_layer: 3\n")
    with pytest.raises(ValueError, match="model.n_layer: config 3 vs checkpoint 2"):
        export_checkpoint(gpt_config, checkpoint, tmp_path / "out3", str(vq_config), str(tmp_path / "vq"))


def test_last_checkpoint_follows_training_when_the_monitor_stalls(tmp_path):
    """Exports read last.ckpt: it must hold the final step even when best.ckpt stops improving."""
    import pytorch_lightning as pl
    from omegaconf import OmegaConf

    from vqvae.plumbing.config import LoggerConfig, TrainerConfig
    from vqvae.plumbing.trainer import build_trainer

    class Stalled(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch).pow(2).mean()

        def validation_step(self, batch, batch_idx):
            self.log("val/accuracy", 0.0)  # never improves after the first validation

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.randn(64, 2), batch_size=4)

        def val_dataloader(self):
            return torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4)

    cfg = OmegaConf.structured(TrainerConfig(accelerator="cpu", devices=1, max_steps=13, val_check_interval=5,
                                             check_val_every_n_epoch=None, enable_progress_bar=False))
    build_trainer(cfg, OmegaConf.structured(LoggerConfig()), tmp_path, monitor="val/accuracy", mode="max",
                  enable_model_summary=False).fit(Stalled())
    step = {name: torch.load(tmp_path / "checkpoints" / f"{name}.ckpt", weights_only=False)["global_step"]
            for name in ("last", "best")}
    assert step == {"last": 13, "best": 5}


def test_a_run_from_an_export_exports_that_exports_vqvae_only_on_its_tokens(tmp_path):
    from gpt.export import _same_vqvae
    from gpt.pretrained import read_layout

    init = build_export(tmp_path / "init")
    own = read_layout(init)["vqvae_fingerprint"]
    assert _same_vqvae(str(init), {"fingerprint": own})  # fine-tuning: the VQ-VAE inside init_from
    assert not _same_vqvae(str(init), {"fingerprint": "feedfacecafe0000"})  # a new VQ-VAE: the sidecar's


def test_a_bf16_vqvae_export_is_half_the_size_loads_under_its_own_fingerprint_and_stays_bf16(tmp_path):
    from safetensors import safe_open

    from gpt.pretrained import load_pretrained
    from vqvae.checkpoint import fingerprint

    vqvae, task = build_parts()
    args = (task.model, task.vocab, "image_first", MAX_LENGTH, MAX_TEXT_LENGTH, vqvae, TINY_VQVAE, MAX_LENGTH)
    full, half = write_export(tmp_path / "fp32", *args), write_export(tmp_path / "bf16", *args, vqvae_bf16=True)
    weights = {name: folder / "vqvae" / "model.safetensors" for name, folder in (("fp32", full), ("bf16", half))}
    assert weights["bf16"].stat().st_size < 0.6 * weights["fp32"].stat().st_size
    with safe_open(str(weights["bf16"]), "pt") as f:
        tensors = [f.get_tensor(key) for key in f.keys()]
    assert {tensor.dtype for tensor in tensors if tensor.is_floating_point()} == {torch.bfloat16}
    loaded = load_pretrained(half, load_tokenizer=False)  # checks the layout's fingerprint against the weights
    assert loaded.fingerprint == fingerprint(vqvae, torch.bfloat16) != fingerprint(vqvae)
    assert load_pretrained(full, load_tokenizer=False).fingerprint == fingerprint(vqvae)
    # Re-exported (as gpt.finetune does from such an export), rounded weights stay bfloat16 without being asked.
    again = write_export(tmp_path / "again", *args[:5], loaded.vqvae, TINY_VQVAE, MAX_LENGTH)
    assert (again / "vqvae" / "model.safetensors").stat().st_size == weights["bf16"].stat().st_size


def test_undrawn_chars_are_the_charset_less_what_the_lineage_drew(tmp_path):
    """A drawer refuses what it never saw drawn: its training texts and its init drawer's remove characters from the
    charset; a recognizer drew none; an init drawer or training CSV that cannot say makes the list unknown (None)."""
    import pandas as pd

    from gpt.export import undrawn_chars
    from tests.fixtures import recognition_export, text_to_image_export

    vocab = Vocab.build(TEXTS, TINY_VQVAE.num_codes)
    train = tmp_path / "train.csv"
    pd.DataFrame({"text": ["hello", "abc 1"]}).to_csv(train, index=False)
    expected = "".join(sorted(set(vocab.chars) - set("helloabc 1")))
    assert undrawn_chars(vocab, [train], None) == expected
    assert undrawn_chars(vocab, [train], str(recognition_export(tmp_path / "recognizer"))) == expected
    drawer = text_to_image_export(tmp_path / "drawer")  # its fixture's train.csv does not exist: unknown
    assert "undrawn_chars" not in json.loads((drawer / "layout.json").read_text(encoding="utf-8"))
    assert undrawn_chars(vocab, [train], str(drawer)) is None
    layout = json.loads((drawer / "layout.json").read_text(encoding="utf-8"))
    (drawer / "layout.json").write_text(json.dumps({**layout, "undrawn_chars": "lw한"}), encoding="utf-8")
    assert undrawn_chars(vocab, [train], str(drawer)) == "w한"
    assert undrawn_chars(vocab, [train, tmp_path / "gone.csv"], None) is None
