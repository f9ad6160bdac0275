"""The time budget: one deadline and all the arithmetic on it, so that hw02.py, the API and the train stage agree on
what "time left" means (docs: "The graded run: On a slow or busy machine").

A Budget is a deadline on time.monotonic()'s clock, or none. The train stage asks it how long each wave of members
may take; a member gets its share as a StepClock, which times its own steps and says how many it can afford."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

# What a run needs after training (aggregating, shutting the workers down: 2 s on a loaded machine): a run's budget
# keeps this much back, 1 s plus a tenth of the budget, at most 5 s.
MARGIN_S, MARGIN_SHARE, MAX_MARGIN_S = 1.0, 0.1, 5.0


@dataclass(frozen=True)
class Budget:
    deadline: float | None = None  # a time.monotonic() value; None: no budget

    @classmethod
    def of_run(cls, seconds: float | None, start: float | None = None) -> Budget:
        """A whole run's budget of `seconds` from `start` (default: now), the margin for what follows training
        kept back. None: no budget."""
        if seconds is None:
            return cls()
        start = time.monotonic() if start is None else start
        return cls(start + seconds - min(MAX_MARGIN_S, MARGIN_S + MARGIN_SHARE * seconds))

    def within(self, seconds: float | None) -> Budget:
        """This budget, or `seconds` from now where that ends sooner (a stage's own time_budget_s)."""
        if seconds is None:
            return self
        own = time.monotonic() + seconds
        return Budget(own if self.deadline is None else min(self.deadline, own))

    @property
    def limited(self) -> bool:
        return self.deadline is not None

    def left(self) -> float:
        """Seconds until the deadline (inf without one; negative once past)."""
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def per_wave(self, waves: int) -> float | None:
        """The seconds each of `waves` waves still to run may take, sharing the time left alike (None: no budget)."""
        return None if self.deadline is None else self.left() / max(1, waves)

    def would_pass(self, seconds: float) -> bool:
        """Would work of `seconds` started now end after the deadline?"""
        return self.deadline is not None and time.monotonic() + seconds > self.deadline


class StepClock:
    """One member's training steps against the seconds it is allowed (None: all of them, untimed).

    The member times its first steps (probe) and what scoring will cost, and takes as many steps as then fit;
    later (replan) it times again over more steps, since the first few run up to a third off the run's rate, and
    sets the number anew (never above the plan); past that, a step that would end its time stops it."""

    def __init__(self, planned: int, seconds_allowed: float | None):
        self.planned = planned
        self.allowed = seconds_allowed
        self.start = time.perf_counter()
        self.loop_start = self.start
        self.scoring = 0.0  # seconds scoring will take once training ends (set by the member at the probe)

    @property
    def timed(self) -> bool:
        return self.allowed is not None

    def warmed_up(self) -> None:
        """The first step is done: it pays for warming up, so the rate is measured from here."""
        self.loop_start = time.perf_counter()

    def per_step(self, step: int) -> float:
        """Seconds a step has taken since the first, `step` steps done."""
        return (time.perf_counter() - self.loop_start) / max(1, step - 1)

    def affordable(self, step: int, per_step: float) -> int:
        """Steps that fit the time allowed at per_step seconds a step, scoring kept back; at least one more than
        done, never more than planned."""
        left = self.allowed - (time.perf_counter() - self.start) - self.scoring
        return min(self.planned, max(step + 1, step + int(left / per_step)))

    def out_of_time(self) -> bool:
        return self.timed and time.perf_counter() - self.start + self.scoring > self.allowed

    def seconds(self) -> float:
        return time.perf_counter() - self.start
