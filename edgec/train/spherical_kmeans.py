"""Spherical k-means: clusters of directions, the split rule of Sigma-Branch's tree nodes.

Samples are compared by cosine similarity only: each feature vector is scaled to unit length,
each centroid is the unit-length mean of its members, and a sample belongs to the centroid it
has the largest dot product with. Because a sample's length does not change which centroid
wins, the same assignment is ``argmax_j (c_j . x)`` on the unnormalised features: a router
that is one matrix product without normalisation (exact in integer arithmetic up to the
rounding of ``x``), which is what makes the centroids usable as router weights.

Deterministic for a given ``seed``: k-means++ seeding on cosine distance, then Lloyd
iterations until no assignment changes (or ``iterations``). A cluster that empties is
re-seeded with the sample farthest from its centroid, so every cluster keeps members
whenever there are at least ``k`` distinct directions.
"""

from __future__ import annotations

import dataclasses

import torch

from edgec.errors import EdgecError


@dataclasses.dataclass(frozen=True)
class SphericalClusters:
    """``centroids`` ``[k, C]`` of unit length; ``assignment`` ``[N]``, the cluster of each
    sample; ``iterations`` the Lloyd steps taken."""

    centroids: torch.Tensor
    assignment: torch.Tensor
    iterations: int

    def sizes(self) -> list[int]:
        """Members per cluster."""
        return torch.bincount(self.assignment, minlength=len(self.centroids)).tolist()


def unit_rows(features: torch.Tensor) -> torch.Tensor:
    """``features`` ``[N, C]`` with every row scaled to unit length (zero rows stay zero)."""
    return features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _seed_centroids(directions: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ on cosine distance ``1 - cos``: the first centroid at random, each next one
    drawn with probability proportional to the distance to the nearest centroid so far."""
    first = int(torch.randint(len(directions), (1,), generator=generator))
    centroids = [directions[first]]
    for _ in range(1, k):
        distance = (1 - directions @ torch.stack(centroids).T).min(dim=1).values.clamp_min(0)
        if float(distance.sum()) == 0:
            raise EdgecError(f"the samples have fewer than {k} distinct directions: they cannot be split",
                             "capture the activations on more (or more varied) samples, or split less deep")
        pick = int(torch.multinomial(distance, 1, generator=generator))
        centroids.append(directions[pick])
    return torch.stack(centroids)


def spherical_kmeans(features: torch.Tensor, k: int = 2, iterations: int = 100, seed: int = 0) -> SphericalClusters:
    """Cluster the rows of ``features`` ``[N, C]`` into ``k`` groups by direction (see the
    module docstring). Raises :class:`~edgec.errors.EdgecError` when ``N < k`` or the rows
    point in fewer than ``k`` directions."""
    if features.dim() != 2:
        raise EdgecError(f"spherical k-means wants features [N, C], got shape {list(features.shape)}",
                         "pool or flatten each sample's activations to one vector first")
    if len(features) < k:
        raise EdgecError(f"{len(features)} samples cannot form {k} clusters", f"give at least {k} samples")
    directions = unit_rows(features.detach().double())
    generator = torch.Generator().manual_seed(seed)
    centroids = _seed_centroids(directions, k, generator)
    assignment = torch.full((len(directions),), -1, dtype=torch.long)
    steps = 0
    while steps < iterations:
        steps += 1
        similarity = directions @ centroids.T
        new = similarity.argmax(dim=1)
        for cluster in range(k):  # re-seed an emptied cluster with the worst-fitting sample
            if not bool((new == cluster).any()):
                worst = int(similarity.gather(1, new[:, None]).squeeze(1).argmin())
                new[worst] = cluster
        if torch.equal(new, assignment):
            break
        assignment = new
        centroids = unit_rows(torch.stack([directions[assignment == c].sum(dim=0) for c in range(k)]))
    return SphericalClusters(centroids.to(features.dtype), assignment, steps)
