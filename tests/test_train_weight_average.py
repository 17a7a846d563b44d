"""scripts.train_weight_average: the average's arithmetic, and ema.ckpt written from last.ckpt."""
import pytest
import torch

from scripts.train_weight_average import WeightAverage, main


def test_the_average_warms_up_then_decays_at_its_rate():
    average = WeightAverage(0.5)
    average.update({"w": torch.tensor([0.0]), "steps": torch.tensor([3])})
    average.update({"w": torch.tensor([1.0]), "steps": torch.tensor([4])})
    # first update: decay min(0.5, 2 / 11), so the new weights count 9 / 11
    assert average.shadow["w"].item() == pytest.approx(9 / 11)
    assert average.shadow["steps"].item() == 4  # integer tensors are copied, not averaged
    for _ in range(50):
        average.update({"w": torch.tensor([1.0]), "steps": torch.tensor([4])})
    assert average.shadow["w"].item() == pytest.approx(1.0, abs=1e-6)
    average.update({"w": torch.tensor([3.0]), "steps": torch.tensor([4])})
    assert average.shadow["w"].item() == pytest.approx(2.0, abs=1e-5)  # now at its decay: half old, half new


def test_ema_ckpt_is_last_ckpt_with_the_averaged_weights(tmp_path):
    average = WeightAverage(0.9)
    average.write(tmp_path)  # nothing averaged and no last.ckpt yet: nothing written
    (tmp_path / "checkpoints").mkdir()
    last = tmp_path / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": {"w": torch.tensor([5.0])}, "meta": "kept"}, last)
    average.update({"w": torch.tensor([2.0])})
    average.write(tmp_path)
    written = torch.load(tmp_path / "checkpoints" / "ema.ckpt", weights_only=False)
    assert written["meta"] == "kept" and written["state_dict"]["w"].item() == 2.0
    assert written["weight_average"] == {"decay": 0.9, "updates": 0}
    assert torch.load(last, weights_only=False)["state_dict"]["w"].item() == 5.0


def test_a_decay_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="decay=1.5"):
        WeightAverage(1.5)


def test_help_prints_the_usage_and_a_bad_decay_names_itself(capsys):
    assert main(["--help"]) == 0 and "python -m scripts.train_weight_average 0.999" in capsys.readouterr().out
    assert main(["config/gpt2-pretrain.yaml"]) == 2
    assert "the first argument must be the decay (e.g. 0.999), got 'config/gpt2-pretrain.yaml'" in \
        capsys.readouterr().err
