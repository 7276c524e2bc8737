"""Per-particle streams and the ziggurat normals, checked against the normal law with
tolerances from the sample size (fixed seeds; 4 standard errors unless stated)."""
import math

import numpy as np
from numba import njit

from engine.rng import (ZIGGURAT_F, ZIGGURAT_X, draw_normals, finish_pair, minibatch_sum,
                        next_u64, next_uniform, normal_candidate, particle_states,
                        sample_without_replacement)

R = ZIGGURAT_X[1]  # right edge of the base layer: beyond it the tail sampler takes over


def _normal_sf(c: float) -> float:
    return 0.5 * math.erfc(c / math.sqrt(2.0))


def _check_normal(z: np.ndarray) -> None:
    n = z.size
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 4 * math.sqrt(2.0 / n)
    assert abs(np.mean(z ** 3)) < 4 * math.sqrt(15.0 / n)  # skewness: Var(z³) = 15
    for c in (0.5, 1.0, 2.0, 3.0, R, 4.0):  # two-sided tails, incl. the ziggurat's tail branch
        p = 2 * _normal_sf(c)
        assert abs(np.mean(np.abs(z) > c) - p) < 4 * math.sqrt(p * (1 - p) / n), c
    # Kolmogorov–Smirnov distance below its 0.1 % critical value 1.95/√n
    sample = np.sort(z[:200_000])
    cdf = 0.5 * np.vectorize(math.erfc)(-sample / math.sqrt(2.0))
    grid = np.arange(1, sample.size + 1) / sample.size
    assert max(np.max(grid - cdf), np.max(cdf - (grid - 1 / sample.size))) < 1.95 / math.sqrt(
        sample.size)


def test_ziggurat_normals_follow_the_normal_law():
    states = particle_states(seed=11, first=0, count=200)
    _check_normal(draw_normals(states, 5000, ZIGGURAT_X, ZIGGURAT_F).ravel())


@njit
def _pairs(states, count, zx, zf):
    out = np.empty((states.shape[0], count, 2))
    for i in range(states.shape[0]):
        s0, s1, s2, s3 = states[i, 0], states[i, 1], states[i, 2], states[i, 3]
        for k in range(count):  # the step kernels' pair draw
            b1, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
            b2, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
            z1, ok1 = normal_candidate(b1)
            z2, ok2 = normal_candidate(b2)
            if not (ok1 and ok2):
                z1, z2, s0, s1, s2, s3 = finish_pair(b1, b2, z1, z2, s0, s1, s2, s3, zx, zf)
            out[i, k, 0] = z1
            out[i, k, 1] = z2
    return out


def test_pair_draws_are_independent_normals():
    pairs = _pairs(particle_states(seed=3, first=0, count=100), 5000, ZIGGURAT_X,
                   ZIGGURAT_F).reshape(-1, 2)
    _check_normal(pairs[:, 0])
    _check_normal(pairs[:, 1])
    n = len(pairs)
    assert abs(np.mean(pairs[:, 0] * pairs[:, 1])) < 4 / math.sqrt(n)  # uncorrelated
    # consecutive steps of one stream are uncorrelated too
    lagged = pairs.reshape(100, 5000, 2)[:, :, 0]
    assert abs(np.mean(lagged[:, 1:] * lagged[:, :-1])) < 4 / math.sqrt(lagged[:, 1:].size)


def test_streams_depend_on_seed_and_particle_only():
    a = particle_states(seed=5, first=0, count=10)
    b = particle_states(seed=5, first=7, count=3)
    np.testing.assert_array_equal(a[7:10], b)  # particle i's stream does not depend on N
    assert not np.array_equal(a, particle_states(seed=6, first=0, count=10))


@njit
def _batches(state, n, batch, rounds, picked):
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    out = np.empty((rounds, batch), dtype=np.int64)
    picks = np.empty(batch, dtype=np.int64)
    for r in range(rounds):
        s0, s1, s2, s3 = sample_without_replacement(picks, picked, n, batch, s0, s1, s2, s3)
        out[r] = picks
    return out


@njit
def _floyd_by_scan(state, n, batch, rounds):
    # the textbook form: test membership by scanning the picks so far
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    out = np.empty((rounds, batch), dtype=np.int64)
    for r in range(rounds):
        taken = 0
        for j in range(n - batch, n):
            u, s0, s1, s2, s3 = next_uniform(s0, s1, s2, s3)
            t = min(int(u * (j + 1)), j)
            for q in range(taken):
                if out[r, q] == t:
                    t = j
                    break
            out[r, taken] = t
            taken += 1
    return out


@njit
def _sums_both_ways(state, data, n, batch, rounds):
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    a0, a1, a2, a3 = s0, s1, s2, s3
    picks = np.empty(batch, dtype=np.int64)
    picked = np.zeros(n // 64 + 2, dtype=np.uint64)
    fused = np.empty((rounds, 2))
    listed = np.empty((rounds, 2))
    for r in range(rounds):
        fused[r, 0], fused[r, 1], s0, s1, s2, s3 = minibatch_sum(picks, picked, data, n, batch,
                                                                 s0, s1, s2, s3)
        a0, a1, a2, a3 = sample_without_replacement(picks, picked, n, batch, a0, a1, a2, a3)
        x = y = 0.0
        for q in range(batch):
            x += data[picks[q], 0]
            y += data[picks[q], 1]
        listed[r, 0], listed[r, 1] = x, y
    return fused, listed


def test_minibatch_sums_are_the_sums_of_floyds_picks():
    # above n = 64 the sums are of sample_without_replacement's picks, added in its order (up
    # to 64, of subset_mask's batch: tests/test_minibatch_sampler.py)
    for n, batch in ((65, 8), (200, 37)):
        data = np.random.default_rng(n).normal(size=(n, 2))
        fused, listed = _sums_both_ways(particle_states(5, 0, 1)[0], data, n, batch, 500)
        np.testing.assert_array_equal(fused, listed)


def test_minibatches_are_distinct_uniform_and_floyds():
    n, batch, rounds = 200, 37, 20_000
    state = particle_states(11, 0, 1)[0]
    picked = np.zeros(n // 64 + 2, dtype=np.uint64)
    batches = _batches(state, n, batch, rounds, picked)
    np.testing.assert_array_equal(batches, _floyd_by_scan(state, n, batch, rounds))
    assert not picked.any()  # the scratch bitset is left clean for the next batch
    assert batches.min() >= 0 and batches.max() < n
    assert all(len(set(row)) == batch for row in batches[:2000])
    # each index is in a batch with probability B/n: counts over rounds are binomial; the
    # largest of 200 deviations stays below 4.5 standard errors with probability ≈ 99.9 %
    counts = np.bincount(batches.ravel(), minlength=n)
    p = batch / n
    assert np.abs(counts - rounds * p).max() < 4.5 * math.sqrt(rounds * p * (1 - p))
