"""The group stage's clusters: join accepted pairs into groups whose every member stays near its representative,
so a chain of near matches does not merge distinct images (docs: "How it works: Clusters")."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def find(parent: list[int], x: int) -> int:
    """The root of x in a union-find forest (halving the path on the way): the one way images are joined."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the pairs (a, b): each image's smallest member index (a root is always the smaller
    of the two it joins, so each root is its component's smallest index)."""
    parent = list(range(n))
    for i, j in zip(a.tolist(), b.tolist()):
        ri, rj = find(parent, i), find(parent, j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(parent, x) for x in range(n)], np.int64)


def bounded_clusters(
    images: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    d: np.ndarray,
    *,
    radius: float,
    distance: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
) -> np.ndarray:
    """Cluster id of each image, joining images along accepted pairs (a, b) at distance d.

    Two copies of one original can be two copies' edits and about twice the threshold apart, so a cluster is
    accepted when every member lies within `radius` of its representative by distance(i, j, radius) (shifts up
    to twice max_shift, or aligned). A connected component that fails (a chain A~B~C~D through distinct images)
    is rebuilt closest pair first, each merge checked the same way against the larger side's first image."""
    n = len(images)
    cluster = components(n, a, b)
    centre = representatives(cluster, a, b, d)
    member = np.flatnonzero(centre != np.arange(n))
    far = distance(member, centre[member], radius)
    broken = np.unique(cluster[member[far > radius]])
    if broken.size == 0:
        return cluster
    inside = np.isin(cluster, broken)
    position, table = component_distances(cluster, broken, distance, radius)

    def gap(comp: int, joining: list[int], big: int) -> float:
        if comp in table:
            return float(table[comp][position[joining], position[big]].max())
        return float(distance(np.array(joining), np.full(len(joining), big), radius).max())

    parent = list(range(n))
    members: dict[int, list[int]] = {}

    redo = np.isin(cluster[a], broken)
    for k in np.flatnonzero(redo)[np.argsort(d[redo], kind="stable")]:
        ra, rb = find(parent, int(a[k])), find(parent, int(b[k]))
        if ra == rb:
            continue
        big, small = (ra, rb) if len(members.get(ra, [ra])) >= len(members.get(rb, [rb])) else (rb, ra)
        joining = members.get(small, [small])
        if gap(int(cluster[big]), joining, big) <= radius:
            parent[small] = big
            members[big] = members.get(big, [big]) + joining
            members.pop(small, None)
    rebuilt = np.array([find(parent, x) for x in range(n)])
    cluster[inside] = rebuilt[inside]
    return cluster


def component_distances(
    cluster: np.ndarray, broken: np.ndarray, distance: Callable, radius: float
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(position of each image in its component, {component: its members' distances float32 (M, M)}) for the
    broken components, looked up during the rebuild; a component too large for a table (never seen in practice)
    has none, and its distances are computed merge by merge instead."""
    position = np.zeros(len(cluster), np.int64)
    table: dict[int, np.ndarray] = {}
    pairs = []
    for comp in broken.tolist():
        nodes = np.flatnonzero(cluster == comp)
        if len(nodes) <= 400:
            position[nodes] = np.arange(len(nodes))
            table[comp] = np.zeros((len(nodes), len(nodes)), np.float32)
            p, q = np.triu_indices(len(nodes), 1)
            pairs.append((comp, p, q, nodes))
    if pairs:
        gaps = distance(
            np.concatenate([nodes[p] for _, p, _, nodes in pairs]),
            np.concatenate([nodes[q] for _, _, q, nodes in pairs]),
            radius,
        )
        start = 0
        for comp, p, q, _ in pairs:
            table[comp][p, q] = table[comp][q, p] = gaps[start : start + len(p)]
            start += len(p)
    return position, table


def representatives(cluster: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The representative of each image's cluster: the member with most accepted pairs inside its cluster,
    then the smallest total distance over them, then the lowest index (an original has its copies as
    neighbours; two copies of it are further apart)."""
    n = len(cluster)
    inside = cluster[a] == cluster[b]
    ends = np.r_[a[inside], b[inside]]
    degree = np.bincount(ends, minlength=n)
    total = np.bincount(ends, weights=np.r_[d[inside], d[inside]], minlength=n)
    order = np.lexsort((np.arange(n), total, -degree, cluster))
    first = np.r_[True, cluster[order][1:] != cluster[order][:-1]]
    best = dict(zip(cluster[order][first].tolist(), order[first].tolist()))
    return np.array([best[c] for c in cluster.tolist()], dtype=np.int64)
