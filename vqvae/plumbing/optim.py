"""Learning-rate schedule shared by every training command: linear warmup, then cosine decay, as a function
of the optimizer step only (never of the clock), so that a run is reproducible from its seed, DDP ranks
apply the same rate, and a resumed run continues the same curve.

A time budget (`trainer.max_time`) enters once, as a step count: `vqvae.plumbing.trainer.StepBudget` measures the
throughput over the first steps on rank 0, turns the remaining time into a number of steps
(`steps_within`), gives it to every rank and to the checkpoint, and sets it as this schedule's decay end.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch

# A time-capped run measures its throughput up to step max(warmup_steps, MEASURE_STEPS): fewer steps than
# this time little more than start-up.
MEASURE_STEPS = 10


def max_time_seconds(max_time: Optional[str]) -> Optional[float]:
    """Seconds of a `max_time` string "DD:HH:MM:SS" (None stays None); a field may pass its unit's range, as in
    "00:00:130:00" for 130 minutes (build_trainer hands Lightning the duration, which it would refuse)."""
    if max_time is None:
        return None
    parts = str(max_time).split(":")
    if len(parts) != 4 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"trainer.max_time={max_time!r} is not DD:HH:MM:SS (e.g. 00:00:05:00 for five minutes)")
    days, hours, minutes, seconds = (int(part) for part in parts)
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def lr_multiplier(step: int, warmup_steps: int, min_ratio: float, decay_start: int,
                  decay_end: Optional[int]) -> float:
    """LR multiplier in [min_ratio, 1] at optimizer step `step`: (step + 1) / warmup_steps during warmup,
    1 until `decay_start`, then a cosine down to `min_ratio` at `decay_end` (flat after). With `decay_end`
    None the rate stays at 1 after warmup."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay_end is None or step < decay_start:
        return 1.0
    progress = 1.0 if decay_end <= decay_start else min(1.0, (step - decay_start) / (decay_end - decay_start))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class StepSchedule:
    """The multiplier of one run: `schedule(step)`, see `lr_multiplier`.

    `decay_end` comes from the config (`optim.decay_steps`, else `trainer.max_steps`); for a run with a
    time budget and no `optim.decay_steps` it stays None (rate 1 after warmup) until `StepBudget` knows the
    step count and calls `set_decay`.
    """

    def __init__(self, warmup_steps: int, min_ratio: float, decay_end: Optional[int] = None) -> None:
        self.warmup_steps, self.min_ratio = max(1, int(warmup_steps)), float(min_ratio)
        self.decay_start, self.decay_end = self.warmup_steps, decay_end
        # Whether the decay end was given by the config; a time budget then only sets where the run stops.
        self.fixed = decay_end is not None and decay_end > 0

    @classmethod
    def for_run(cls, warmup_steps: int, min_ratio: float, decay_steps: Optional[int],
                planned_steps: Optional[float], max_time: Optional[str]) -> "StepSchedule":
        """The decay end is `decay_steps` if set; else, without a time budget, `planned_steps` (the run's
        length, e.g. `trainer.max_steps`; None, <= 0 or inf: no decay); else it waits for the budget."""
        if decay_steps:
            return cls(warmup_steps, min_ratio, int(decay_steps))
        if max_time is None and planned_steps is not None and 0 < planned_steps < math.inf:
            return cls(warmup_steps, min_ratio, int(planned_steps))
        return cls(warmup_steps, min_ratio, None)

    def set_decay(self, start: int, end: int) -> None:
        """Cosine from step `start` to `end` (a decay end given by the config is kept)."""
        if not self.fixed:
            self.decay_start, self.decay_end = max(self.warmup_steps, int(start)), int(end)

    def measure_at(self) -> int:
        """The step where a time budget is turned into a step count (the end of warmup, at least
        MEASURE_STEPS): until then a budget-driven schedule does not depend on the budget."""
        return max(self.warmup_steps, MEASURE_STEPS)

    def __call__(self, step: int) -> float:
        return lr_multiplier(step, self.warmup_steps, self.min_ratio, self.decay_start, self.decay_end)


def lr_scheduler(optimizer: torch.optim.Optimizer, schedule: StepSchedule) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR following `schedule`.

    The schedule is wrapped in a plain function on purpose: LambdaLR saves the attributes of callable
    objects in its state dict and restores them on resume, which would put a finished run's decay end back
    over a config that extends it. The step comes from the checkpoint; the decay end from the config or the
    StepBudget's own checkpoint state.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule(step))


def steps_within(seconds_left: float, seconds_per_step: float, step: int) -> int:
    """The step a run at `step` reaches in `seconds_left` at `seconds_per_step` (at least `step`)."""
    if seconds_per_step <= 0:
        raise ValueError(f"seconds_per_step={seconds_per_step} must be > 0")
    return step + max(0, math.floor(seconds_left / seconds_per_step))


# Newton-Schulz quintic coefficients of Muon (Jordan et al. 2024; torch.optim.Muon's defaults).
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)


def orthogonalized(matrix: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """`matrix` pushed toward U V^T of its SVD (singular values near 1) by Muon's Newton-Schulz iteration, in float32:
    torch.optim.Muon iterates in bfloat16, which a CPU without native bf16 emulates (the 4 x 128 GPT's step on one
    AVX2 core: 2.025 s with it, 1.162 s with this, 1.106 s with AdamW alone; BENCHMARKS.md)."""
    a, b, c = NEWTON_SCHULZ
    x = matrix.float()
    wide = x.size(0) <= x.size(1)
    x = x if wide else x.T
    x = x / x.norm().clamp(min=1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x if wide else x.T


class Muon(torch.optim.Optimizer):
    """torch.optim.Muon's update with `orthogonalized` in float32: Nesterov momentum, orthogonalized, its rate
    matched to AdamW's update RMS (`adjust_lr_fn="match_rms_adamw"`: lr x 0.2 sqrt(max(rows, cols)), Moonlight), and
    decoupled weight decay. 2-D parameters only."""

    def __init__(self, params: Any, lr: float, momentum: float = 0.95):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": 0.0})
        for group in self.param_groups:
            if any(param.ndim != 2 for param in group["params"]):
                raise ValueError("Muon takes 2-D weight matrices only")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(param.grad)
                buffer = state["momentum_buffer"]
                buffer.lerp_(param.grad, 1 - group["momentum"])
                update = orthogonalized(param.grad.lerp(buffer, group["momentum"]))
                param.mul_(1 - group["lr"] * group["weight_decay"])
                param.add_(update.to(param.dtype), alpha=-group["lr"] * 0.2 * math.sqrt(max(param.shape)))


class MuonAdamW(torch.optim.Optimizer):
    """`Muon` on hidden weight matrices, AdamW on every other parameter, as one optimizer, so that one LR schedule,
    gradient clipping and checkpoints see them all; one `lr` and one weight decay serve both (Muon's rate is matched
    to AdamW's update RMS). The two inner optimizers hold this one's group dicts, so the schedule's rate reaches
    them."""

    def __init__(self, matrices: list[torch.nn.Parameter], decay: list[torch.nn.Parameter],
                 plain: list[torch.nn.Parameter], lr: float, betas: tuple[float, float], weight_decay: float):
        groups = [{"params": matrices, "weight_decay": weight_decay, "muon": True},
                  {"params": decay, "weight_decay": weight_decay, "muon": False},
                  {"params": plain, "weight_decay": 0.0, "muon": False}]
        super().__init__([group for group in groups if group["params"]], {"lr": lr})
        self.muon = Muon([g for g in self.param_groups if g["muon"]], lr=lr)
        self.adamw = torch.optim.AdamW([g for g in self.param_groups if not g["muon"]], lr=lr, betas=betas,
                                       foreach=True)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        self.param_groups = self.muon.param_groups + self.adamw.param_groups  # loading made new group dicts


def optimizer_with_schedule(decay: list[torch.nn.Parameter], plain: list[torch.nn.Parameter], optim_cfg: Any,
                            planned_steps: Optional[float], max_time: Optional[str],
                            matrices: Optional[list[torch.nn.Parameter]] = None) -> tuple[dict[str, Any], StepSchedule]:
    """The optimizer of every training command, and a per-step LambdaLR following this module's schedule
    (`optim_cfg`: lr, betas, weight_decay, warmup_steps, min_lr_ratio, decay_steps): AdamW over the `decay`
    parameters (with weight decay) and the `plain` ones (without), or, given `matrices`, `MuonAdamW` with Muon on
    those. Returns Lightning's `configure_optimizers` dict and the schedule, which a
    `vqvae.plumbing.trainer.StepBudget` completes once a time budget is measured."""
    if matrices:
        optimizer = MuonAdamW(matrices, decay, plain, optim_cfg.lr, tuple(optim_cfg.betas), optim_cfg.weight_decay)
    else:
        # The multi-tensor path (one op per step, not one per parameter) on every device: a fused AdamW unscales
        # gradients itself, so Lightning's mixed precision refuses to clip them (gradient_clip_val), seen on an H200.
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": optim_cfg.weight_decay},
                                       {"params": plain, "weight_decay": 0.0}],
                                      lr=optim_cfg.lr, betas=tuple(optim_cfg.betas), foreach=True)
    schedule = StepSchedule.for_run(optim_cfg.warmup_steps, optim_cfg.min_lr_ratio, optim_cfg.decay_steps,
                                    planned_steps, max_time)
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": lr_scheduler(optimizer, schedule), "interval": "step"}}, schedule
