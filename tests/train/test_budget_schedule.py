"""train.schedule "budget" (nmt.train.callbacks.BudgetSchedule): warm-up, then a cosine decay that ends with
the run's step budget, or with the steps its time budget buys; exact resume after a kill."""

import csv
import math
from pathlib import Path

import pytest

from nmt import config
from nmt.errors import UserError
from nmt.train.callbacks import BudgetSchedule
from tests.helpers import TINY, fresh_run, kill_and_resume, run_train, step_losses


def cosine(step, peak, warmup, floor, total):
    """The schedule written out independently: linear warm-up, then half a cosine period."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= total:
        return floor
    progress = (step - warmup) / (total - warmup)
    return floor + (peak - floor) * (1 + math.cos(math.pi * progress)) / 2


def test_the_rate_warms_up_then_decays_to_the_floor_at_the_last_step():
    schedule = BudgetSchedule(1e-3, 10, 1e-5, max_steps=110)
    rates = [schedule.rate(s) for s in range(130)]
    assert rates == pytest.approx([cosine(s, 1e-3, 10, 1e-5, 110) for s in range(130)], rel=1e-12)
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3) and rates[10] == pytest.approx(1e-3)
    assert rates[60] == pytest.approx((1e-3 + 1e-5) / 2)  # half way through the decay
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # never rises after the warm-up
    assert rates[110:] == [1e-5] * 20
    assert BudgetSchedule(1e-3, 0, 0.0, max_steps=4).rate(0) == pytest.approx(1e-3)  # no warm-up


class _Clock:
    def __init__(self, spent):
        self.value = spent

    def spent(self):
        return self.value


class _Steps:
    """The optimizer's step counter as the callback reads it (``.numpy()``)."""

    def __init__(self, n):
        self.n = n

    def numpy(self):
        return self.n


class _Model:
    class optimizer:  # noqa: N801  (Keras' attribute name)
        iterations = None
        learning_rate = None


def test_a_time_budget_is_turned_into_steps_at_every_epoch_end():
    clock = _Clock(30.0)
    schedule = BudgetSchedule(2e-3, 5, 0.0, max_steps=10_000, max_time=90.0, budget=clock)
    model = _Model()
    schedule.set_model(model)
    assert schedule.rate(50) == pytest.approx(2e-3, rel=1e-4)  # no estimate yet: the decay to step 10,000
    model.optimizer.iterations = _Steps(100)
    schedule.on_epoch_end(0)
    assert schedule.total_steps == 300  # 100 steps in 30 s of 90
    clock.value = 75.0
    model.optimizer.iterations = _Steps(200)
    schedule.on_epoch_end(1)
    assert schedule.total_steps == 240  # slower since: the estimate follows the pace so far
    both = BudgetSchedule(2e-3, 5, 0.0, max_steps=200, max_time=90.0, budget=_Clock(30.0))
    both.set_model(model)
    model.optimizer.iterations = _Steps(100)
    both.on_epoch_end(0)
    assert both.total_steps == 200  # the step budget ends first
    assert schedule.get_state() == {"total_steps": 240}


def test_a_budget_schedule_needs_a_floor_below_the_peak():
    config.TrainConfig(schedule="budget")  # without max_steps or max_time: the decay ends with the epochs
    with pytest.raises(UserError, match=r"^train\.min_learning_rate: received 0\.01, expected at most learning_rate"):
        config.TrainConfig(schedule="budget", max_time=60, min_learning_rate=0.01)
    config.TrainConfig(schedule="budget", max_steps=100)
    with pytest.raises(UserError, match=r"^train\.schedule: received 'budget', expected not budget with max_time"):
        config.TrainConfig(schedule="budget", max_time=60, distribute="multi_worker")
    config.TrainConfig(schedule="budget", max_steps=100, distribute="multi_worker")


def _rates(run) -> dict:
    with open(Path(run) / "logs" / "steps.tsv", encoding="utf-8") as f:
        return {int(row["step"]): float(row["learning_rate"]) for row in csv.DictReader(f, delimiter="\t")}


@pytest.mark.slow
def test_train_py_follows_the_schedule_and_resumes_it_exactly(tmp_path, tiny_run):
    """Every step's logged learning rate is the formula's (TINY: 60 steps), and a run killed mid-way and
    resumed gives the uninterrupted run's losses and rates; early stopping beside the schedule is warned of."""
    overrides = [*TINY, "train.schedule=budget", "train.warmup_steps=10", "train.min_learning_rate=1.0e-5"]
    whole = fresh_run(tmp_path, tiny_run, "whole")
    proc = run_train(whole, *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rates = _rates(whole)
    peak = config.load(whole / "config.yaml").train.learning_rate
    assert sorted(rates) == list(range(1, 61))
    for step, rate in rates.items():  # steps.tsv counts from 1, the schedule from 0
        assert rate == pytest.approx(cosine(step - 1, peak, 10, 1e-5, 60), rel=1e-6), step
    want = step_losses(whole)
    run = fresh_run(tmp_path, tiny_run, "killed")
    # early stopping that never fires (patience 100) changes no step, only adds a warning to train.log
    got, resumed_from = kill_and_resume(run, [*overrides, "train.early_stopping_patience=100"], kill_after=33)
    assert 10 < resumed_from < 60, resumed_from
    assert sorted(got) == list(range(1, 61))
    for step in want:
        assert abs(got[step] - want[step]) <= 1e-6, (step, got[step], want[step])
    assert _rates(run) == pytest.approx(rates, rel=1e-6)
    warning = "WARNING train.early_stopping_patience=100 with train.schedule=budget: a dev plateau before the decay"
    assert warning in (run / "train.log").read_text(encoding="utf-8")
    assert "with train.schedule=budget" not in (whole / "train.log").read_text(encoding="utf-8")
