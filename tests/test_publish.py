"""scripts.publish: a version is written only when it scores better, never with pickles, with its card."""
import json
from pathlib import Path

import pytest

from scripts.publish import publish_if_better


def fake_export(folder, weights=b"safetensors bytes"):
    (folder / "vqvae").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "layout.json").write_text("{}")
    (folder / "vqvae" / "model.safetensors").write_bytes(b"vq")
    return folder


def test_publishes_only_an_improvement(tmp_path):
    target = tmp_path / "models" / "m"
    first = fake_export(tmp_path / "a", b"first")
    assert publish_if_better(first, target, 0.30, "# card one", {"steps": 10})
    assert (target / "README.md").read_text() == "# card one"
    assert json.loads((target / "metrics.json").read_text()) == {"steps": 10, "held_out_score": 0.30}
    assert (target / "vqvae" / "model.safetensors").is_file()
    worse = fake_export(tmp_path / "b", b"worse")
    assert not publish_if_better(worse, target, 0.30, "# card two", {})  # equal is not better
    assert (target / "model.safetensors").read_bytes() == b"first"
    better = fake_export(tmp_path / "c", b"better")
    assert publish_if_better(better, target, 0.31, "# card three", {})
    assert (target / "model.safetensors").read_bytes() == b"better"
    assert not list(target.parent.glob(".m.*"))  # no staging folder left behind


def with_metadata_reordered(source, path):
    """`source`'s tensors and metadata written to `path` with the metadata's keys in the other order: what another
    export of the same weights may write, since safetensors orders them by a hash map (randomly, call by call)."""
    data = source.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    header["__metadata__"] = dict(reversed(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode().ljust(size)
    assert len(text) == size
    path.write_bytes(data[:8] + text + data[8 + size:])


def test_a_weights_file_with_the_same_tensors_keeps_its_published_bytes(tmp_path):
    import torch
    from safetensors.torch import save_file

    target = tmp_path / "models" / "m"
    exports = [fake_export(tmp_path / name, name.encode()) for name in ("a", "b", "c")]
    vq_files = [export / "vqvae" / "model.safetensors" for export in exports]
    metadata = {"format": "vqvae", "fingerprint": "f"}
    save_file({"w": torch.arange(6.0).reshape(2, 3)}, vq_files[0], metadata=metadata)
    with_metadata_reordered(vq_files[0], vq_files[1])
    save_file({"w": torch.zeros(2, 3)}, vq_files[2], metadata=metadata)
    assert vq_files[1].read_bytes() != vq_files[0].read_bytes()
    published = target / "vqvae" / "model.safetensors"
    assert publish_if_better(exports[0], target, 0.30, "# one", {})
    first = published.read_bytes()
    assert publish_if_better(exports[1], target, 0.31, "# two", {})
    assert published.read_bytes() == first  # same tensors: git sees no change
    assert (target / "model.safetensors").read_bytes() == b"b"  # the GPT's new weights are published
    assert publish_if_better(exports[2], target, 0.32, "# three", {})
    assert published.read_bytes() == vq_files[2].read_bytes()


def test_refuses_pickled_weights(tmp_path):
    export = fake_export(tmp_path / "a")
    (export / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ValueError, match="pickles"):
        publish_if_better(export, tmp_path / "models" / "m", 0.5, "# card", {})
    assert not (tmp_path / "models" / "m").exists()


def test_a_baseline_rescored_on_new_sets_replaces_the_recorded_score(tmp_path):
    target = tmp_path / "models" / "m"
    publish_if_better(fake_export(tmp_path / "a", b"first"), target, 0.48, "# card", {})
    # The published model reads 0.44 on the sets the new export was scored on: 0.46 beats it there.
    assert not publish_if_better(fake_export(tmp_path / "b", b"second"), target, 0.46, "# card", {})
    assert publish_if_better(fake_export(tmp_path / "c", b"third"), target, 0.46, "# card", {}, baseline=0.44)
    assert (target / "model.safetensors").read_bytes() == b"third"


def test_the_recognizer_card_names_its_vqvae_and_every_set():
    from scripts.publish import model_card

    entry = {"distinct_crops": 1360000, "steps": 136000, "chunk": 33, "cpu_hours": 16.5}
    evaluation = {"results": [{"dataset": "heldout_en", "samples": 300, "accuracy": 0.6, "one_minus_ned": 0.8,
                               "cer": 0.2}, {"dataset": "real_ko", "samples": 45, "accuracy": 0.25,
                                             "one_minus_ned": 0.5, "cer": 0.5}]}
    run_info = {"shard_size": 40000, "train_fonts": 395, "heldout_fonts": "Lato, Roboto", "vq_steps": 5428,
                "vq_codes": 4096, "gpt_size": "4 layers x 128 wide, 4 heads"}
    card = model_card(entry, 0.5, evaluation, run_info)
    assert "VQ-VAE: 4,096 codes, 5,428 steps" in card and "GPT steps: 136,000" in card
    assert "GPT-2: 4 layers x 128 wide" in card
    assert "| heldout_en | 300 | 60.0% |" in card and "| real_ko | 45 | 25.0% |" in card
    assert "4 codes across its line" in card and "no GPU" in card
    gpu_card = model_card({**entry, "gpu_hours": 0.15, "gpu": "NVIDIA H200"}, 0.5, evaluation,
                          {**run_info, "line_codes": 6})
    assert "6 codes across its line" in gpu_card and "and 0.15 GPU-hours (NVIDIA H200)" in gpu_card
    assert "heldout_en_display" not in card  # named only where it was scored
    display = {"dataset": "heldout_en_display", "samples": 300, "accuracy": 0.55, "one_minus_ned": 0.8, "cer": 0.1}
    display_card = model_card(entry, 0.5, {"results": [*evaluation["results"], display]},
                              {**run_info, "display_fonts": "Lobster, Teko"})
    assert "| heldout_en_display | 300 | 55.0% |" in display_card
    assert ("display families never used in training either (Lobster, Teko); it is not in the held-out mean"
            in display_card)


def test_a_continuation_counts_the_rendering_and_encoding_of_its_shards(tmp_path, monkeypatch):
    from scripts import publish_continuation

    monkeypatch.setattr(publish_continuation, "CORES", 2)
    (tmp_path / "logs").mkdir()
    for step, seconds in (("render-shard38", 900), ("encode-shard38", 900), ("render-shard39", 1800)):
        (tmp_path / "logs" / f"{step}.done").write_text(f"{seconds}\n-m scripts.render_text ...\n")
    shard = tmp_path / "data" / "shard_038"
    assert publish_continuation.shard_cost(tmp_path, [shard]) == pytest.approx(1.0)  # 1 800 s x 2 cores
    (tmp_path / "logs" / "encode-shard38-augmented.done").write_text("900\n-m vqvae.encode ...\n")
    assert publish_continuation.shard_cost(tmp_path, [shard]) == pytest.approx(1.5)  # its second encoding too
    with pytest.raises(FileNotFoundError, match="encode-shard39.done is missing"):
        publish_continuation.shard_cost(tmp_path, [shard, tmp_path / "data" / "shard_039"])


def test_a_continuation_is_judged_against_the_published_model_scored_anew_on_the_same_crops(tmp_path, monkeypatch):
    """Not against its card's score, which may average other sets (the three loose ones before session 42)."""
    import gpt.evaluate
    from scripts import publish_continuation
    from scripts.pretrain import DISPLAY_SET, TEST_SETS, held_out_score

    read: list[list[str]] = []

    def evaluate(argv):  # the export reads 0.7 of every set, the published model 0.6
        read.append(argv)
        accuracy = 0.7 if argv[0] == str(tmp_path / "run-export") else 0.6
        sets = [arg.split("/")[-2] for arg in argv[1:] if arg.endswith("labels.csv")]
        results = [{"dataset": name, "accuracy": accuracy} for name in sets]
        (Path(argv[argv.index("--json") + 1])).write_text(json.dumps({"results": results}))
        return 0

    monkeypatch.setattr(gpt.evaluate, "main", evaluate)
    published = tmp_path / "published"
    published.mkdir()
    (published / "metrics.json").write_text(json.dumps({"held_out_score": 0.95}))  # another collection's score
    evaluation, baseline = publish_continuation.judge(tmp_path / "run-export", tmp_path / "pretrain",
                                                      str(tmp_path / "no-real"), published)
    sets = [[arg for arg in argv if arg.endswith("labels.csv")] for argv in read]
    assert baseline == pytest.approx(0.6) and len(sets) == 2 and sets[0] == sets[1]  # the same crops
    assert {r["dataset"] for r in evaluation["results"]} == set(TEST_SETS) and any("_tight" in n for n in TEST_SETS)
    # A folder with the display set has it scored too, outside the score publishing compares.
    (tmp_path / "pretrain" / "data" / DISPLAY_SET).mkdir(parents=True)
    (tmp_path / "pretrain" / "data" / DISPLAY_SET / "labels.csv").write_text("img_path,text\n")
    read.clear()
    evaluation, baseline = publish_continuation.judge(tmp_path / "run-export", tmp_path / "pretrain",
                                                      str(tmp_path / "no-real"), published)
    assert {r["dataset"] for r in evaluation["results"]} == {*TEST_SETS, DISPLAY_SET}
    assert baseline == pytest.approx(0.6) and held_out_score({"accuracy": {DISPLAY_SET: 0.0, **{
        name: 0.6 for name in TEST_SETS}}}) == pytest.approx(0.6)


def test_a_continuation_counts_only_shards_its_lineage_has_not_seen(tmp_path):
    from scripts.publish_continuation import lineage_counts

    shards = []
    for number, rows in ((42, 3), (43, 5), (44, 7)):
        shards.append(tmp_path / f"shard_{number:03d}")
        shards[-1].mkdir()
        (shards[-1] / "tokens.csv").write_text("tokens,text\n" + "1 2,a\n" * rows)
    shards = {shard: shard / "tokens.csv" for shard in shards}
    base = {"chunk": 41, "distinct_crops": 1000}
    # Shards 042-043 on chunk 41: both new, and the next make pretrain chunk (44) renders a new seed.
    first_two = dict(list(shards.items())[:2])
    assert lineage_counts(base, first_two) == (43, 1008)
    # The same shards again on the model they made: no new crops; the chunk still moves on.
    assert lineage_counts({"chunk": 43, "distinct_crops": 1008}, first_two) == (44, 1008)
    assert lineage_counts({"chunk": 43, "distinct_crops": 1008}, shards) == (44, 1015)
    with pytest.raises(ValueError, match="not a make pretrain shard folder"):
        lineage_counts(base, {tmp_path / "aug": tmp_path / "aug" / "tokens.csv"})


def test_a_shard_trained_in_two_encodings_counts_its_crops_once(tmp_path):
    from scripts.publish_continuation import lineage_counts, trained_shards

    shard = tmp_path / "shard_053"
    shard.mkdir()
    for name in ("tokens.csv", "tokens-augmented.csv"):
        (shard / name).write_text("tokens,text\n" + "1 2,a\n" * 5)
    train = f"{shard / 'tokens.csv'},{shard / 'tokens-augmented.csv'}"
    assert trained_shards(train) == {shard: shard / "tokens.csv"}
    assert lineage_counts({"chunk": 52, "distinct_crops": 1000}, trained_shards(train)) == (53, 1005)


def test_a_shard_trained_only_in_its_augmented_encoding_counts_its_crops(tmp_path):
    from scripts.publish_continuation import lineage_counts, trained_shards

    shard = tmp_path / "shard_065"
    shard.mkdir()
    (shard / "tokens-augmented.csv").write_text("tokens,text\n" + "1 2,a\n" * 4)
    counted = lineage_counts({"chunk": 62, "distinct_crops": 1000}, trained_shards(str(shard / "tokens-augmented.csv")))
    assert counted == (65, 1004)


def published_drawer(tmp_path, monkeypatch):
    """A published drawing model (card score 0.60, 1 000 steps, 2 CPU-hours) that publish_draw_continuation sees."""
    from scripts import publish_draw_continuation

    published = tmp_path / "models" / "draw"
    publish_if_better(fake_export(tmp_path / "old", b"old"), published, 0.60, "# old card",
                      {"steps": 1000, "cpu_hours": 2.0})
    (published / "layout.json").write_text(json.dumps({"vqvae_fingerprint": "f1"}))
    monkeypatch.setattr(publish_draw_continuation, "SHIPPED_DRAW_MODEL", published)
    return published


def drawing_run(run, steps, seconds, crops, weights=b"new"):
    """A gpt.finetune run folder: export, last.ckpt's training time, a config naming its one shard of `crops`."""
    import torch

    fake_export(run / "export", weights)
    (run / "export" / "layout.json").write_text(json.dumps({"vqvae_fingerprint": "f1", "global_step": steps}))
    (run / "checkpoints").mkdir()
    torch.save({"callbacks": {"Timer": {"time_elapsed": {"train": seconds}}}}, run / "checkpoints" / "last.ckpt")
    shard = run / "tokens.csv"
    shard.write_text("header\n" + "row\n" * crops)
    (run / "config.yaml").write_text(f"data:\n  train: {shard}\n")
    return run


def judged(pair, name, exact, refused=0):
    """scripts.bench_draw's legibility.json for pair/bench-NAME, every group at `exact`, `refused` prompts refused."""
    (pair / f"bench-{name}").mkdir(parents=True, exist_ok=True)
    group = {"prompts": 200, "recognizer_exact": exact, "any_candidate_exact": exact, "tesseract_exact": 0.4}
    (pair / f"bench-{name}" / "legibility.json").write_text(json.dumps(
        {"overall": group, "by_group": {"en": group}, "by_length": {"1-2": group}, "num_candidates": 8,
         "sampling": {"temperature": 0.7, "guidance_scale": 2.0}, "images_per_s": 20.0,
         "refused_prompts": refused, "never_drawn": "잤춥" if refused else ""}))


def test_a_drawing_continuation_must_beat_the_published_model_judged_on_its_prompts(tmp_path, monkeypatch):
    from scripts import publish_draw_continuation

    published = published_drawer(tmp_path, monkeypatch)
    pair = tmp_path / "pair"
    run = drawing_run(pair / "B", steps=500, seconds=1800.0, crops=7)
    judged(pair, "published", 0.55)  # today's recognizer judges the published model lower than its card (0.60)
    judged(pair, "B", 0.58)
    publish_draw_continuation.main([str(run), "--cores", "1", "--history", "at a quarter of the peak rate"])
    assert (published / "model.safetensors").read_bytes() == b"old"  # 0.58 beats 0.55, not the card's 0.60
    judged(pair, "B", 0.62, refused=3)
    publish_draw_continuation.main([str(run), "--cores", "1", "--history", "at a quarter of the peak rate"])
    assert (published / "model.safetensors").read_bytes() == b"new"
    metrics = json.loads((published / "metrics.json").read_text())
    assert metrics["steps"] == 1500 and metrics["cpu_hours"] == 2.5 and metrics["held_out_score"] == 0.62
    card = (published / "README.md").read_text()
    assert "the 7 crops its last 500 steps trained on" in card
    assert "the last 500 continuing the published drawing model at a quarter of the peak rate" in card
    assert "3 prompts hold a character it never saw drawn (잤춥): refused" in card


def test_the_mean_of_a_pairs_arms_counts_the_steps_hours_and_crops_of_both(tmp_path, monkeypatch):
    from scripts import publish_draw_continuation

    published = published_drawer(tmp_path, monkeypatch)
    arms = [drawing_run(tmp_path / "pair" / arm / "run", steps, 3600.0, crops, b"arm")
            for arm, steps, crops in (("A", 700, 5), ("B", 740, 6))]
    soup = tmp_path / "pair" / "soup" / "run"
    fake_export(soup / "export", b"mean")
    (soup / "export" / "layout.json").write_text(json.dumps({"vqvae_fingerprint": "f1", "global_step": 700}))
    judged(soup.parent, "published", 0.55)
    judged(soup.parent, "run", 0.70)
    publish_draw_continuation.main([str(soup), "--arms", *map(str, arms), "--cores", "1", "--history", "averaged"])
    assert (published / "model.safetensors").read_bytes() == b"mean"
    metrics = json.loads((published / "metrics.json").read_text())
    assert metrics["steps"] == 1740 and metrics["cpu_hours"] == 4.0  # the longer arm; both arms' hours
    assert "the 11 crops its last 740 steps trained on" in (published / "README.md").read_text()


def test_averaging_exports_takes_the_weighted_mean_and_refuses_other_tensors(tmp_path):
    import torch

    from scripts.average_exports import average_state_dicts, main
    from tests.fixtures import recognition_export

    a = {"w": torch.zeros(2, 3), "b": torch.ones(3, dtype=torch.bfloat16)}
    b = {"w": torch.full((2, 3), 3.0), "b": torch.full((3,), 5.0, dtype=torch.bfloat16)}
    mean = average_state_dicts([a, b], [2.0, 1.0])
    assert torch.equal(mean["w"], torch.ones(2, 3)) and mean["b"].dtype == torch.bfloat16
    assert torch.equal(mean["b"].float(), torch.full((3,), 7.0 / 3).bfloat16().float())
    with pytest.raises(ValueError, match="other tensors"):
        average_state_dicts([a, {"w": a["w"]}], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"is \(3,\), not \(2, 3\)"):
        average_state_dicts([a, {"w": torch.zeros(3), "b": a["b"]}], [1.0, 1.0])
    with pytest.raises(ValueError, match="one weight per export"):
        average_state_dicts([a, b], [1.0])

    from safetensors.torch import load_file

    first, second = recognition_export(tmp_path / "e0", seed=0), recognition_export(tmp_path / "e1", seed=1)
    assert main([str(first), str(second), "--output", str(tmp_path / "soup")]) == 0
    assert sorted(p.name for p in (tmp_path / "soup").iterdir()) == sorted(p.name for p in first.iterdir())
    weights = [load_file(e / "model.safetensors") for e in (first, second, tmp_path / "soup")]
    name = next(k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k]))
    assert torch.allclose(weights[2][name], (weights[0][name] + weights[1][name]) / 2)
    with pytest.raises(SystemExit):
        main([str(first), "--output", str(tmp_path / "soup")])  # exists


def test_a_mean_of_drawers_refuses_what_none_of_them_saw_drawn():
    from scripts.average_exports import averaged_layout

    a, b = {"order": "text_first", "undrawn_chars": "abz"}, {"order": "text_first", "undrawn_chars": "bcz"}
    assert averaged_layout([a, b]) == {"order": "text_first", "undrawn_chars": "bz"}
    assert "undrawn_chars" not in averaged_layout([a, {"order": "text_first"}])  # one unknown: unknown


def test_undrawn_chars_script_records_what_the_text_rule_never_emits(tmp_path, capsys):
    from scripts.undrawn_chars import emitted_chars, main
    from tests.fixtures import recognition_export, text_to_image_export

    emitted = emitted_chars(3000)
    assert set("abcXYZ0189 한국어.%") <= emitted and "₩" not in emitted  # prices in Korean end in 원, never ₩
    drawer = text_to_image_export(tmp_path / "drawer")  # its tiny charset is all common letters: none undrawn
    assert main([str(drawer), "--texts", "3000", "--write"]) == 0
    assert json.loads((drawer / "layout.json").read_text(encoding="utf-8"))["undrawn_chars"] == ""
    assert "0 of the charset's 17 characters come in none of 3000 texts" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(recognition_export(tmp_path / "recognizer")), "--texts", "10", "--write"])
