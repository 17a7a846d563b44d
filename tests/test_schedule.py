import pytest

from vqvae.schedule import lr_lambda, max_time_seconds


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steps_drive_warmup_then_cosine():
    factor = lr_lambda(10, 110, 0.1)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.55)
    assert factor(110) == pytest.approx(0.1)
    assert factor(500) == pytest.approx(0.1)


def test_no_decay_target_keeps_the_rate_after_warmup():
    factor = lr_lambda(10, None, 0.1)
    assert factor(5) == pytest.approx(0.6)
    assert factor(10_000) == 1.0


def test_time_cap_decays_a_run_that_stops_before_max_steps():
    clock = FakeClock()
    factor = lr_lambda(10, 10_000, 0.1, max_seconds=60.0, clock=clock)
    assert factor(0) == pytest.approx(0.1)  # warmup is by steps, and starts the clock
    clock.now += 30.0  # half the time, 0.4% of the steps
    assert factor(50) == pytest.approx(0.55)
    clock.now += 30.0
    assert factor(100) == pytest.approx(0.1)


def test_steps_win_when_they_are_further_along_than_time():
    clock = FakeClock()
    factor = lr_lambda(10, 110, 0.1, max_seconds=3600.0, clock=clock)
    factor(0)
    clock.now += 1.0
    assert factor(110) == pytest.approx(0.1)


def test_max_time_seconds():
    assert max_time_seconds(None) is None
    assert max_time_seconds("00:00:05:30") == 330.0
    assert max_time_seconds("01:02:00:00") == 26 * 3600.0
    with pytest.raises(ValueError, match="DD:HH:MM:SS"):
        max_time_seconds("5 minutes")
