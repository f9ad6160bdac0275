"""Which evidence decides the labels: the trained members' out-of-bag class probabilities, or the nearest
neighbours' where the members were clearly right less often (docs: "How it works: aggregate")."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # the result choose_evidence reads; none of its stage's code runs here
    from stages.train import TrainResult

EVIDENCE_Z = 2.0  # how clearly the neighbours must beat the members to decide instead (neighbours_clearly_better)


def share_right(prob: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> float:
    """How often the most probable class of prob[rows] is the given label (0 for no rows)."""
    return float((prob[rows].argmax(1) == labels[rows]).mean()) if rows.size else 0.0


class Evidence(NamedTuple):
    """The evidence the labels are decided by (choose_evidence): per sample (N rows)."""

    prob: np.ndarray  # float (N, K): class probabilities (nan rows: nobody scored the sample)
    votes: np.ndarray  # int (N, K): how many of the scorers predicted each class
    n_scored: np.ndarray  # int (N,): how many scored it
    source: str  # "members" or "neighbours"
    note: str  # why the neighbours decide, where they do

    @property
    def scored(self) -> np.ndarray:
        return self.n_scored > 0


def neighbours_clearly_better(members_prob: np.ndarray, nn_prob: np.ndarray, labels: np.ndarray) -> bool:
    """Are the neighbours right more often than the members on the same samples, by more than chance explains?
    McNemar's test, one-sided: of the samples where exactly one of the two is right, the neighbours must win
    more than EVIDENCE_Z standard deviations above half. A tie, or a point either way on a few hundred samples,
    leaves the members to decide: they alone give calibrated evidence for samples without a twin."""
    members_right = members_prob.argmax(1) == labels
    neighbours_right = nn_prob.argmax(1) == labels
    members_only = int((members_right & ~neighbours_right).sum())
    neighbours_only = int((neighbours_right & ~members_right).sum())
    return neighbours_only - members_only > EVIDENCE_Z * np.sqrt(max(1, members_only + neighbours_only))


def choose_evidence(labels: np.ndarray, oob: TrainResult) -> Evidence:
    """The members' evidence, or the nearest neighbours' where the members are right less often on the clean
    samples both scored (those no twin contradicts; their few wrong labels cost both alike). A time budget that cut
    the members short is what makes them lose."""
    members = Evidence(oob.prob, oob.votes, oob.n_scored, oob.source, "")
    if oob.source != "members" or not oob.nn_scored.any():  # evidence a user brought is theirs to trust
        return members
    agree = ~oob.open_question
    both = np.flatnonzero(agree & oob.nn_scored & oob.scored)
    members_right = share_right(oob.prob, labels, both) if both.size else 0.0
    neighbours_right = share_right(oob.nn_prob, labels, np.flatnonzero(agree & oob.nn_scored))
    if oob.scored.all() and not neighbours_clearly_better(oob.prob[both], oob.nn_prob[both], labels[both]):
        if members_right >= neighbours_right:
            return members
        return members._replace(
            note=f"the members were right on {members_right:.0%} of clean samples, nearest "
            f"neighbours on {neighbours_right:.0%}: weak evidence, so expect misses and "
            f"wrong flags (longer training helps: train.min_steps, train.epochs)"
        )
    nn_votes = np.zeros_like(oob.votes)
    nn_votes[np.flatnonzero(oob.nn_scored), oob.nn_prob[oob.nn_scored].argmax(1)] = 1
    trained = (
        f"the members were right on {members_right:.0%} of clean samples, nearest neighbours on {neighbours_right:.0%}"
        if oob.scored.any()
        else "no member trained (too few agreeing groups to learn from, or too little time)"
    )
    note = f"{trained}: twin groups decided by nearest neighbours, no flags without a twin"
    prob = np.where(oob.nn_scored[:, None], oob.nn_prob, np.nan)
    return Evidence(prob, nn_votes, oob.nn_scored.astype(np.int64), "neighbours", note)
