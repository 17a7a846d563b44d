import math
from copy import deepcopy

import pytest
import torch

from vqvae.plumbing.optim import MEASURE_STEPS, StepSchedule, lr_scheduler, max_time_seconds, steps_within


def test_steps_drive_warmup_then_cosine():
    schedule = StepSchedule(10, 0.1, 110)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(9) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.55)
    assert schedule(110) == pytest.approx(0.1)
    assert schedule(500) == pytest.approx(0.1)


def test_no_decay_target_keeps_the_rate_after_warmup():
    schedule = StepSchedule(10, 0.1, None)
    assert schedule(5) == pytest.approx(0.6)
    assert schedule(10_000) == 1.0


def test_for_run_picks_the_decay_end():
    assert StepSchedule.for_run(10, 0.1, None, 200, None).decay_end == 200
    assert StepSchedule.for_run(10, 0.1, 50, 200, "00:00:01:00").decay_end == 50  # explicit wins
    assert StepSchedule.for_run(10, 0.1, None, -1, None).decay_end is None
    assert StepSchedule.for_run(10, 0.1, None, math.inf, None).decay_end is None
    # A time budget: the end waits for the measured step count, whatever max_steps says.
    assert StepSchedule.for_run(10, 0.1, None, 200, "00:00:01:00").decay_end is None


def test_time_budget_holds_then_decays_from_where_it_was_measured():
    schedule = StepSchedule.for_run(2, 0.1, None, -1, "00:00:01:00")
    measured = schedule.measure_at()
    assert measured == MEASURE_STEPS
    before = [schedule(step) for step in range(measured + 1)]
    schedule.set_decay(measured, measured + 100)
    # Nothing already applied changes, and the cosine starts at 1 where the budget became known.
    assert [schedule(step) for step in range(measured + 1)] == before
    assert schedule(measured + 50) == pytest.approx(0.55)
    assert schedule(measured + 100) == pytest.approx(0.1)


def test_explicit_decay_steps_are_kept_by_a_budget():
    schedule = StepSchedule.for_run(2, 0.1, 40, -1, "00:00:01:00")
    schedule.set_decay(10, 500)
    assert schedule(40) == pytest.approx(0.1) and schedule.decay_start == 2


def test_scheduler_state_leaves_the_schedule_to_the_config():
    """LambdaLR's state dict must not carry the decay end: a resumed run takes it from its config (or from
    StepBudget's checkpoint state), so extending max_steps extends the decay."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = lr_scheduler(optimizer, StepSchedule(2, 0.1, 10))
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    resumed = lr_scheduler(optimizer, StepSchedule(2, 0.1, 100))
    resumed.load_state_dict(state)
    assert resumed.last_epoch == 5 and resumed.lr_lambdas[0](50) > 0.5


def test_steps_within():
    assert steps_within(10.0, 0.5, 20) == 40
    assert steps_within(-3.0, 0.5, 20) == 20  # over time already: stop now
    with pytest.raises(ValueError, match="seconds_per_step"):
        steps_within(10.0, 0.0, 20)


def test_max_time_seconds():
    assert max_time_seconds(None) is None
    assert max_time_seconds("00:00:05:30") == 330.0
    assert max_time_seconds("01:02:00:00") == 26 * 3600.0
    with pytest.raises(ValueError, match="DD:HH:MM:SS"):
        max_time_seconds("5 minutes")


def test_a_budget_over_an_hour_may_be_written_in_minutes(tmp_path):
    # scripts pass "00:00:$MINUTES:00"; Lightning itself refuses a minutes field over 59
    from pytorch_lightning.callbacks import Timer

    from vqvae.plumbing.config import LoggerConfig, TrainerConfig
    from vqvae.plumbing.trainer import build_trainer

    from omegaconf import OmegaConf

    trainer_cfg = OmegaConf.structured(TrainerConfig(accelerator="cpu", max_time="00:00:130:00"))
    trainer = build_trainer(trainer_cfg, OmegaConf.structured(LoggerConfig(kind="csv")), tmp_path)
    timer = next(callback for callback in trainer.callbacks if isinstance(callback, Timer))
    assert timer._duration == 130 * 60


def _muon_model_and_optimizer(seed: int):
    from vqvae.plumbing.optim import MuonAdamW

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 4))
    matrices = [model[1].weight, model[2].weight]
    optimizer = MuonAdamW(matrices, [model[0].weight], [model[1].bias, model[2].bias], lr=1e-2,
                          betas=(0.9, 0.98), weight_decay=0.01)
    return model, optimizer


def _muon_step(model, optimizer, scheduler, seed: int):
    torch.manual_seed(seed)
    optimizer.zero_grad()
    model(torch.randint(0, 10, (16,))).pow(2).mean().backward()
    optimizer.step()
    scheduler.step()


def test_muon_with_adamw_follows_the_schedule_and_resumes_exactly():
    model, optimizer = _muon_model_and_optimizer(0)
    assert [group["muon"] for group in optimizer.param_groups] == [True, False, False]
    scheduler = lr_scheduler(optimizer, StepSchedule(4, 0.1, 20))
    start = model[1].weight.detach().clone()
    for step in range(3):
        _muon_step(model, optimizer, scheduler, step)
    assert not torch.equal(model[1].weight, start)
    # The schedule's rate reaches the inner optimizers' groups: they are this optimizer's group dicts.
    assert optimizer.muon.param_groups[0]["lr"] == pytest.approx(1e-2 * StepSchedule(4, 0.1, 20)(3))
    assert optimizer.adamw.param_groups[0] is optimizer.param_groups[1]

    # A copy restored from the state dicts takes the same next steps (momentum and moments included). Deep copies,
    # as a checkpoint file holds: a state dict shares its tensors with the optimizer it came from.
    copy, copy_optimizer = _muon_model_and_optimizer(1)
    copy.load_state_dict(model.state_dict())
    copy_scheduler = lr_scheduler(copy_optimizer, StepSchedule(4, 0.1, 20))
    copy_optimizer.load_state_dict(deepcopy(optimizer.state_dict()))
    copy_scheduler.load_state_dict(deepcopy(scheduler.state_dict()))
    for step in range(3, 6):
        _muon_step(model, optimizer, scheduler, step)
        _muon_step(copy, copy_optimizer, copy_scheduler, step)
    for mine, theirs in zip(model.parameters(), copy.parameters()):
        assert torch.equal(mine, theirs)
    assert copy_optimizer.muon.param_groups[0] is copy_optimizer.param_groups[0]


def test_muon_takes_the_blocks_weight_matrices_only():
    from transformers import GPT2Config, GPT2LMHeadModel

    from gpt.task import is_block_matrix, no_decay

    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64, bos_token_id=0, eos_token_id=0))
    picked = {name for name, param in model.named_parameters() if is_block_matrix(name) and not no_decay(name, param)}
    assert picked == {f"transformer.h.{layer}.{part}.weight" for layer in range(2)
                      for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}


def test_muon_matches_torch_muon_up_to_its_bfloat16():
    from vqvae.plumbing.optim import Muon

    torch.manual_seed(0)
    ours, theirs = torch.nn.Parameter(torch.randn(6, 10)), torch.nn.Parameter(torch.randn(6, 10))
    theirs.data.copy_(ours.data)
    mine = Muon([{"params": [ours], "weight_decay": 0.01}], lr=0.02)
    reference = torch.optim.Muon([theirs], lr=0.02, weight_decay=0.01, adjust_lr_fn="match_rms_adamw")
    start = ours.detach().clone()
    for _ in range(3):
        grad = torch.randn(6, 10)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        mine.step()
        reference.step()
    # Both moved the same way by the same amount; torch's iteration runs in bfloat16 (3 significant digits).
    assert torch.allclose(ours - start, theirs - start, atol=0.02 * 0.05)
    assert (ours - start).abs().max() > 0.01  # three steps of 0.2 sqrt(10) x lr each, at most
