"""The σ-noise minibatch sampler (engine.rng.subset_mask): its law is exactly the uniform law on
B-subsets of n, its sums follow its written rule bit for bit, and every compiled copy of the
kinds that draw it (SGD's and the adaptive kinds' one-particle loops and their grouped plain
loops) takes the same steps."""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from numba import njit, uint64

from engine.presets import preset_from_dict
from engine.rng import minibatch_sum, next_u64, particle_states, subset_mask
from engine.simulation import Simulation


@njit
def _masks(state, n, count, rounds):
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    out = np.empty(rounds, dtype=np.uint64)
    for r in range(rounds):
        out[r], s0, s1, s2, s3 = subset_mask(n, count, s0, s1, s2, s3)
    return out


@njit
def _modulo_masks(state, n, count, rounds):
    # a plausible bug: slices folded into range(n) by a remainder instead of rejected
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    out = np.zeros(rounds, dtype=np.uint64)
    for r in range(rounds):
        taken = 0
        while taken < count:
            word, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
            for k in range(10):
                t = (word >> uint64(58 - 6 * k)) & uint64(63)
                bit = uint64(1) << (t % uint64(n))
                if taken < count and not out[r] & bit:
                    out[r] |= bit
                    taken += 1
    return out


def _members(masks, n):
    return ((masks[:, None] >> np.arange(n, dtype=np.uint64)) & np.uint64(1)).astype(np.float64)


def _inclusion_agrees(members, count):
    """Whether every index is in a batch with frequency B/n and every pair with B(B−1)/(n(n−1)):
    over R independent batches each count is binomial; the largest deviation of n indices
    (of n(n−1)/2 pairs) exceeds 4.5 (5) standard errors with probability < 10⁻³ when the
    law is right."""
    rounds, n = members.shape
    p1 = count / n
    singles = members.sum(axis=0)
    if np.abs(singles - rounds * p1).max() > 4.5 * math.sqrt(rounds * p1 * (1 - p1)):
        return False
    p2 = count * (count - 1) / (n * (n - 1))
    pairs = (members.T @ members)[np.triu_indices(n, 1)]
    return np.abs(pairs - rounds * p2).max() <= 5.0 * math.sqrt(rounds * p2 * (1 - p2))


@pytest.mark.parametrize("n, count", [(64, 8), (48, 5), (13, 12), (2, 1)])
def test_indices_and_pairs_are_included_with_the_uniform_laws_frequencies(n, count):
    masks = _masks(particle_states(3, 0, 1)[0], n, count, 100_000)
    members = _members(masks, 64)
    assert not members[:, n:].any()
    assert np.all(members.sum(axis=1) == count)
    assert _inclusion_agrees(members[:, :n], count)


def test_the_inclusion_check_fails_biased_samplers():
    state = particle_states(3, 0, 1)[0]
    # remainders favour the indices below 64 − 48: their inclusion frequency is off
    folded = _members(_modulo_masks(state, 48, 5, 100_000), 48)
    assert np.all(folded.sum(axis=1) == 5) and not _inclusion_agrees(folded, 5)
    # a run of B consecutive indices from a uniform start: each index is included with
    # frequency exactly B/n, but neighbours come together far too often
    starts = np.random.default_rng(0).integers(0, 64, size=100_000)
    runs = np.zeros((100_000, 64))
    for k in range(8):
        runs[np.arange(100_000), (starts + k) % 64] = 1.0
    assert not _inclusion_agrees(runs, 8)


def test_every_subset_is_equally_likely():
    # all C(6, 3) = 20 subsets: each count is binomial(R, 1/20); 4.5 standard errors
    rounds = 100_000
    masks = _masks(particle_states(8, 0, 1)[0], 6, 3, rounds)
    counts = {int(m): c for m, c in zip(*np.unique(masks, return_counts=True))}
    subsets = [sum(1 << i for i in s) for s in combinations(range(6), 3)]
    assert set(counts) == set(subsets)
    p = 1 / len(subsets)
    se = math.sqrt(rounds * p * (1 - p))
    assert max(abs(counts[s] - rounds * p) for s in subsets) < 4.5 * se


@njit
def _words(state, count):
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    out = np.empty(count, dtype=np.uint64)
    for k in range(count):
        out[k], s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
    return out


@njit
def _sums(state, data, count, rounds):
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    picks = np.empty(count, dtype=np.int64)
    picked = np.zeros(2, dtype=np.uint64)
    out = np.empty((rounds, 2))
    for r in range(rounds):
        out[r, 0], out[r, 1], s0, s1, s2, s3 = minibatch_sum(picks, picked, data, data.shape[0],
                                                             count, s0, s1, s2, s3)
    return out, np.array([s0, s1, s2, s3])


def _written_rule(words, data, count, rounds):
    """subset_mask's rule in plain Python: each draw cut from the top into 60 // w slices of
    w = ⌈log₂ n⌉ bits, the first B distinct slices below n taken, the rest of the draw
    dropped; the rows summed in increasing index.  Returns the sums and the draws used."""
    n = data.shape[0]
    width = max((n - 1).bit_length(), 1)
    used = 0
    sums = []
    for _ in range(rounds):
        batch: list[int] = []
        while len(batch) < count:
            word = int(words[used])
            used += 1
            for k in range(60 // width):
                t = (word >> (64 - width * (k + 1))) & ((1 << width) - 1)
                if t < n and t not in batch and len(batch) < count:
                    batch.append(t)
        x = y = 0.0
        for t in sorted(batch):
            x += float(data[t, 0])
            y += float(data[t, 1])
        sums.append((x, y))
    return np.array(sums), used


@pytest.mark.parametrize("n, count", [(64, 8), (40, 9), (7, 7), (64, 30)])
def test_minibatch_sums_follow_the_written_rule_bit_for_bit(n, count):
    state = particle_states(5, 2, 1)[0]
    data = np.random.default_rng(n).normal(size=(n, 2))
    got, end = _sums(state, data, count, 300)
    words = _words(state, 300 * 40)
    expected, used = _written_rule(words, data, count, 300)
    np.testing.assert_array_equal(got, expected)
    # the stream advanced by exactly the draws the rule used
    np.testing.assert_array_equal(end, _words_state(state, used))


def _words_state(state, count):
    s = state.copy()
    _advance(s, count)
    return s


@njit
def _advance(state, count):
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for _ in range(count):
        _, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


def _preset(dynamics, landscape, particles=203):
    return preset_from_dict({
        "name": "copies", "landscape": landscape, "dynamics": dynamics,
        "ensemble": {"particles": particles, "seed": 4,
                     "init": {"mean": [0.2, 0.1], "std": 1.0}},
        "run": {"steps": 1, "record_every": 10**9}})


_REFLECT = {"builtin": "double_well", "boundary": "reflect", "bounds": [[-1.3, 1.3], [-0.6, 0.6]]}


@pytest.mark.parametrize("dynamics, landscape", [
    ({"kind": "adam", "lr": 0.01, "temperature": 0.3}, {"builtin": "double_well"}),
    ({"kind": "rmsprop", "lr": 0.01, "temperature": 0.0, "weight_decay": 0.1},
     {"builtin": "double_well"}),
    ({"kind": "adamw", "lr": 0.02, "temperature": 0.2, "weight_decay": 0.3,
      "dataset_size": 48, "batch_size": 5}, _REFLECT),
    ({"kind": "adam", "lr": 0.05, "temperature": 0.1, "weight_decay": 0.2, "dataset_size": 13,
      "batch_size": 4}, {"builtin": "double_well", "boundary": "periodic",
                         "bounds": [[-3.0, 3.0], [-3.0, 3.0]]}),
    # particles whose squared gradient overflows (|x| > 1.3): the grouped loop redoes them one
    # by one, and they freeze
    ({"kind": "rmsprop", "lr": 0.01, "temperature": 0.05},
     {"builtin": "quadratic", "params": {"a": 1e155, "b": 0.0, "c": 1.0}, "boundary": "none"}),
    ({"kind": "sgd", "lr": 0.01, "temperature": 0.3}, {"builtin": "double_well"}),
    ({"kind": "sgd", "lr": 0.01, "temperature": 0.1, "dataset_size": 33, "batch_size": 20},
     _REFLECT),
])
def test_every_copy_of_the_minibatch_kinds_takes_the_same_steps(dynamics, landscape):
    # the grouped plain loop (no diagnostics) against the one-particle loop (diagnostics),
    # over uneven chunks and a particle count that leaves a short last group
    preset = _preset(dynamics, landscape)
    plain, full = Simulation(preset, diagnostics=False), Simulation(preset)
    for sim in (plain, full):
        sim.advance(61)
        sim.advance(40)
    for name in ("positions", "rng", "alive"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(full, name), err_msg=name)
    for name in ("moments", "velocities"):
        if hasattr(plain, name):
            np.testing.assert_array_equal(getattr(plain, name), getattr(full, name),
                                          err_msg=name)
    if landscape.get("builtin") == "quadratic":
        assert 0 < plain.alive.sum() < len(plain.alive)
    whole = Simulation(preset, diagnostics=False)
    whole.advance(101)  # chunking changes nothing
    np.testing.assert_array_equal(whole.positions, plain.positions)
    np.testing.assert_array_equal(whole.rng, plain.rng)
