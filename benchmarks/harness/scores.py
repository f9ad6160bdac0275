"""How an answer is scored against the truth, each score written once. Undefined scores (a precision with nothing
flagged) are nan, which results files keep as null and tables print as '-'.

    tally(flagged, truth)          hit, missed and false flags; pooled over cases by adding Tally
    average_precision(ranking, truth), best_cut(ranking, truth)      a ranking's, whatever its cut
    best_cut_errors(score, wrong)  the fewest errors of any threshold on a score
    auroc(score, positive)         how well a score tells positives from negatives
    errors_within(flagged, wrong, where)     misses and false flags among some samples (the twins', say)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NAN = float("nan")


@dataclass(frozen=True)
class Tally:
    """Flags against the truth: right flags (hit), wrong labels not flagged (missed), right labels flagged (false).
    Add tallies to pool cases: precision, recall and F1 of the sum are the pooled ones."""

    hit: int = 0
    missed: int = 0
    false: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.hit + other.hit, self.missed + other.missed, self.false + other.false)

    @property
    def errors(self) -> int:
        """What the grader counts: missed + wrongly flagged."""
        return self.missed + self.false

    @property
    def flagged(self) -> int:
        return self.hit + self.false

    @property
    def wrong(self) -> int:
        return self.hit + self.missed

    @property
    def precision(self) -> float:
        return self.hit / self.flagged if self.flagged else NAN

    @property
    def recall(self) -> float:
        return self.hit / self.wrong if self.wrong else NAN

    @property
    def f1(self) -> float:
        return 2 * self.hit / (self.flagged + self.wrong) if self.flagged + self.wrong else NAN


def tally(flagged, truth) -> Tally:
    """flagged, truth: sample indices (arrays, lists or sets) or bool masks of one length."""
    flagged, truth = _indices(flagged), _indices(truth)
    return Tally(len(flagged & truth), len(truth - flagged), len(flagged - truth))


def _indices(x) -> set[int]:
    x = np.asarray(list(x) if isinstance(x, set) else x)
    return set((np.flatnonzero(x) if x.dtype == bool else x.astype(np.int64)).tolist())


def parse_line(line: str) -> set[int]:
    """The indices of a line as hw02.py prints it ('3, 17, 40'; empty when nothing is flagged)."""
    return {int(i) for i in line.strip().split(", ")} if line.strip() else set()


def average_precision(ranking: np.ndarray, truth: np.ndarray) -> float:
    """The mean, over the wrong labels, of the precision of the ranking's top part down to each (nan: none found)."""
    hit = np.isin(ranking, truth)
    if not hit.any():
        return NAN
    return float((np.cumsum(hit) / np.arange(1, len(hit) + 1))[hit].sum() / len(truth))


def best_cut(ranking: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(flagged, right) where the ranking's top k have the best F1 over every k, chosen with the truth: no rule
    that flags a top part of this ranking does better."""
    hit = np.isin(ranking, truth)
    right = np.cumsum(hit)
    k = int(np.argmax(2 * right / (np.arange(1, len(hit) + 1) + len(truth)))) if len(hit) else -1
    return (k + 1, int(right[k])) if k >= 0 else (0, 0)


def best_cut_errors(score: np.ndarray, wrong: np.ndarray) -> int:
    """Fewest misses + false flags of any cut of the ranking that flags the lowest scores (wrong: bool)."""
    hit = wrong[np.argsort(score, kind="stable")]
    found = np.r_[0, np.cumsum(hit)]
    flagged = np.arange(len(hit) + 1)
    return int(((hit.sum() - found) + (flagged - found)).min())


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative (ties count half;
    nan scores count as the lowest)."""
    score = np.nan_to_num(score, nan=-np.inf)
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # average ranks over ties
    p, n = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - p * (p + 1) / 2) / (p * n)) if p and n else NAN


def errors_within(flagged: np.ndarray, wrong: np.ndarray, where: np.ndarray) -> int:
    """Misses + false flags among the samples `where` marks (all three bool, one per sample): the errors on the
    twins, say, with `where` the conflicting groups' members."""
    return int((where & (flagged != wrong)).sum())
