"""The time budget: one deadline, and the arithmetic every stage shares on it."""

import time

import pytest

from stages.budget import Budget, StepClock


def test_a_runs_budget_keeps_a_margin_for_what_follows_training():
    assert Budget.of_run(150, start=100.0).deadline == pytest.approx(100 + 150 - 5)  # at most 5 s
    assert Budget.of_run(10, start=0.0).deadline == pytest.approx(10 - 2)  # 1 s and a tenth
    assert Budget.of_run(None).deadline is None and not Budget().limited


def test_a_stages_own_budget_counts_from_now_and_the_sooner_deadline_wins():
    now = time.monotonic()
    assert Budget().within(None).deadline is None
    assert Budget().within(30).deadline == pytest.approx(now + 30, abs=1)
    assert Budget(now + 10).within(30).deadline == now + 10
    assert Budget(now + 60).within(30).deadline == pytest.approx(now + 30, abs=1)


def test_the_waves_still_to_run_share_the_time_left():
    budget = Budget(time.monotonic() + 60)
    assert budget.per_wave(3) == pytest.approx(20, abs=0.5)
    assert budget.per_wave(0) == pytest.approx(60, abs=0.5)
    assert Budget().per_wave(3) is None and Budget().left() == float("inf")
    assert budget.would_pass(61) and not budget.would_pass(50) and not Budget().would_pass(1e9)


def test_a_member_affords_the_steps_its_time_allows_never_more_than_planned(monkeypatch):
    now = [0.0]  # times in eighths of a second: exact in binary, so the arithmetic below has no rounding to hide
    monkeypatch.setattr("stages.budget.time.perf_counter", lambda: now[0])
    clock = StepClock(1000, seconds_allowed=10.0)
    clock.warmed_up()
    now[0] += 1.0  # eight more steps at 0.125 s each
    assert clock.per_step(9) == 0.125
    clock.scoring = 1.0
    assert clock.affordable(9, 0.125) == 9 + 64  # (10 s - 1 s spent - 1 s scoring) / 0.125 s
    assert StepClock(50, 10.0).affordable(10, 0.001) == 50  # never above the plan
    now[0] += 100
    assert clock.affordable(9, 0.125) == 10 and clock.out_of_time()  # at least one more step, then stop
    assert not StepClock(50, None).out_of_time()
