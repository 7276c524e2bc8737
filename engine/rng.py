"""Counter-free per-particle random streams for the step kernels.

Each particle owns a xoshiro256+ state (four uint64 words, seeded by splitmix64 from the run seed
and the particle index).  Because a particle's draws depend only on its own stream, a run is
bitwise identical whatever the thread count or the chunking of ``advance`` calls, and particles can
be added mid-run without disturbing the others.  Gaussians come from a 256-layer ziggurat
(Marsaglia & Tsang 2000): one 64-bit draw, an integer compare and one multiply on the fast
path, which matters because the Langevin step is bound by Gaussian generation.

All draw functions take and return the four state words so numba keeps them in registers.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types, uint64
from numba.extending import intrinsic

_MASK64 = (1 << 64) - 1
_TWO_POW_M53 = 1.1102230246251565e-16


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray]:
    """Layer edges ``x[0..256]`` and ``exp(-x²/2)`` for the 256-layer normal ziggurat."""
    r = 3.6541528853610088  # right edge of the base layer
    v = 0.00492867323399  # area of every layer (unnormalised density exp(-x²/2))
    x = np.zeros(257)
    x[0] = v / math.exp(-0.5 * r * r)
    x[1] = r
    for i in range(1, 256):
        level = math.exp(-0.5 * x[i] * x[i]) + v / x[i]
        x[i + 1] = math.sqrt(-2.0 * math.log(level)) if level < 1.0 else 0.0
    x[256] = 0.0
    return x, np.exp(-0.5 * x * x)


ZIGGURAT_X, ZIGGURAT_F = _ziggurat_tables()
# fast path: z = ±m·W[l] for the 53-bit integer m, accepted iff m < K[l] (inner rectangle)
ZIGGURAT_W = ZIGGURAT_X[:256] * _TWO_POW_M53
ZIGGURAT_K = np.array([math.ceil(ZIGGURAT_X[i + 1] / ZIGGURAT_X[i] * 2.0 ** 53)
                       for i in range(256)], dtype=np.int64)
# the same tables indexed by the draw's top 9 bits (layer·2 + sign): the sign comes with the
# table lookup instead of a bit-to-float conversion and a multiply (≈ 5 % of a Langevin step)
ZIGGURAT_SIGNED_W = np.repeat(ZIGGURAT_W, 2) * np.tile([1.0, -1.0], 256)
ZIGGURAT_SIGNED_K = np.repeat(ZIGGURAT_K, 2)


def _wedge_bands(x: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per layer ``l ≥ 1``: the slope of the chord from ``(x[l+1], f[l+1])`` to ``(x[l], f[l])``
    and bounds ``below ≤ exp(-t²/2) − chord(t) ≤ above`` over the layer, ``t ∈ [x[l+1], x[l]]``,
    widened by 1e-12 (far beyond the rounding of the chord and of ``math.exp``): a wedge point
    below ``chord + below`` is under the density, one above ``chord + above`` is not, and only
    between them does the wedge test need the exponential."""
    slope, below, above = np.zeros(256), np.zeros(256), np.zeros(256)
    points = 4096
    for layer in range(1, 256):
        a, b = x[layer + 1], x[layer]
        slope[layer] = (f[layer + 1] - f[layer]) / (b - a)
        t = np.linspace(a, b, points + 1)
        gap = np.exp(-0.5 * t * t) - (f[layer] + (b - t) * slope[layer])
        # between grid points the gap strays by at most h²/8 · max |f''| ≤ h²/8 from them
        slack = ((b - a) / points) ** 2 / 8.0 + 1e-12
        below[layer] = min(gap.min(), 0.0) - slack
        above[layer] = max(gap.max(), 0.0) + slack
    return slope, below, above


WEDGE_SLOPE, WEDGE_BELOW, WEDGE_ABOVE = _wedge_bands(ZIGGURAT_X, ZIGGURAT_F)


def _splitmix64(value: int) -> tuple[int, int]:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = value
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value, z ^ (z >> 31)


@njit(cache=True)
def _seed_states_kernel(key: np.uint64, first: np.int64, out: np.ndarray) -> None:
    golden = uint64(0x9E3779B97F4A7C15)
    for i in range(out.shape[0]):
        value = key ^ (uint64(first + i) * uint64(0xD1B54A32D192ED03))
        for w in range(4):
            value = value + golden
            z = value
            z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
            out[i, w] = z ^ (z >> uint64(31))


def stream_key(seed: int, purpose: int = 0) -> np.uint64:
    """A 64-bit key derived from the run seed and a purpose tag (particles, init, data…)."""
    _, key = _splitmix64((int(seed) * 0x2545F4914F6CDD1D + purpose) & _MASK64)
    return np.uint64(key)


def particle_states(seed: int, first: int, count: int, purpose: int = 0) -> np.ndarray:
    """xoshiro256+ states for particles ``first … first+count-1``, shape ``(count, 4)`` uint64."""
    out = np.empty((count, 4), dtype=np.uint64)
    _seed_states_kernel(stream_key(seed, purpose), np.int64(first), out)
    return out


@njit(inline="always")
def next_u64(s0, s1, s2, s3):
    """One xoshiro256+ output; returns ``(value, s0, s1, s2, s3)``."""
    result = s0 + s3
    t = s1 << uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << uint64(45)) | (s3 >> uint64(19))
    return result, s0, s1, s2, s3


@njit(inline="always")
def next_uniform(s0, s1, s2, s3):
    """Uniform double in [0, 1) from the top 53 bits; returns ``(u, s0, s1, s2, s3)``."""
    bits, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
    return np.float64(np.int64(bits >> uint64(11))) * _TWO_POW_M53, s0, s1, s2, s3


@njit(inline="always")
def floyd_index(bits, j):
    """``⌊u (j + 1)⌋`` for the uniform ``u`` of ``bits``' top 53 bits (:func:`next_uniform`):
    Floyd's candidate in ``range(j + 1)``.  Below ``j = 2¹¹`` the product is taken in integers,
    exactly and without int↔float conversions on the hot path (the float product may round
    up to ``j + 1``, hence the clamp there)."""
    m = bits >> uint64(11)
    if j < 2048:
        return np.int64((m * uint64(j + 1)) >> uint64(53))
    return min(int(np.float64(np.int64(m)) * _TWO_POW_M53 * (j + 1)), j)


@njit(inline="always")
def sample_without_replacement(picks, picked, n, count, s0, s1, s2, s3):
    """Floyd's algorithm: ``count`` distinct indices of ``range(n)`` into ``picks[:count]``;
    returns the advanced state ``(s0, s1, s2, s3)``.

    ``picked`` (uint64, at least ``n / 64`` words, all zero) marks the indices taken so far, so each
    membership test is one bit instead of a scan of the picks (B² / 2 compares per batch); it
    is all zero again on return.
    """
    taken = 0
    for j in range(n - count, n):
        bits, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
        t = floyd_index(bits, j)
        if picked[t >> 6] & (uint64(1) << uint64(t & 63)):
            t = j
        picks[taken] = t
        picked[t >> 6] |= uint64(1) << uint64(t & 63)
        taken += 1
    for q in range(taken):
        t = picks[q]
        picked[t >> 6] = uint64(0)
    return s0, s1, s2, s3


@intrinsic
def popcount(typingctx, word):
    """The number of set bits of a uint64 (one ``popcnt``)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@intrinsic
def lowest_bit(typingctx, word):
    """The index of the lowest set bit of a nonzero uint64 (one ``tzcnt``)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


@intrinsic
def bit_length(typingctx, word):
    """The number of bits a uint64 needs: 64 minus its leading zeros (one ``lzcnt``)."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        zeros = builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))
        return builder.sub(ir.Constant(ir.IntType(64), 64), zeros)

    return sig, codegen


@njit(inline="always")
def _low_bits(count):
    """A uint64 with its ``count ≤ 64`` lowest bits set."""
    return ~uint64(0) if count >= 64 else (uint64(1) << uint64(count)) - uint64(1)


@njit(nogil=True, cache=True)
def subset_mask(n, count, s0, s1, s2, s3):
    """A uniformly random ``count``-subset of ``range(n)``, ``count ≤ n ≤ 64``, as the bits of a
    uint64; returns ``(mask, s0, s1, s2, s3)``.

    Each 64-bit draw is cut, from the top, into ``60 // w`` slices of ``w = ⌈log₂ n⌉`` bits
    (the lowest bits of xoshiro256+ are its weakest and are never used); each slice is a
    uniform value in ``range(2^w)``, and the subset is the first ``count`` distinct values
    below ``n`` in the slice sequence — sequential sampling without replacement with
    rejection of repeats and of values ≥ n, so exactly uniform over subsets.  Values ≥ n
    start out marked in the mask, so one bit test rejects both; a batch is complete when the
    mask has ``count`` more bits than it started with, and a mask's bits only grow, so the
    batch is the last running mask with at most that many (popcount, no branch per slice).
    The slices left in the last draw are discarded: every batch begins with a fresh draw, so
    a particle's stream does not depend on how the steps are chunked.  At n = 64, B = 8 one
    draw completes the batch 98 % of the times (Floyd's algorithm takes one draw per pick).
    Out of line: one compiled copy serves every kernel (inlined, each copy of each kernel
    compiled these loops again, with no step measurably faster).
    """
    width = max(bit_length(uint64(n - 1)), np.int64(1))
    per = 60 // width
    shift = uint64(64 - width)
    invalid = _low_bits(np.int64(1) << width) & ~_low_bits(n)
    target = uint64(count) + popcount(invalid)
    mask = chosen = invalid
    while popcount(chosen) < target:
        word, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
        for k in range(per):
            mask |= uint64(1) << (word >> shift)
            word <<= uint64(width)
            chosen = mask if popcount(mask) <= target else chosen
    return chosen & ~invalid, s0, s1, s2, s3


@njit(inline="always")
def masked_row_sums(data, mask):
    """``(Σ data[t, 0], Σ data[t, 1])`` over the set bits ``t`` of ``mask``, in increasing
    ``t`` (so the sums are a function of the subset alone)."""
    ax = 0.0
    ay = 0.0
    while mask:
        t = lowest_bit(mask)
        mask &= mask - uint64(1)
        ax += data[t, 0]
        ay += data[t, 1]
    return ax, ay


@njit(inline="always")
def minibatch_sum(picks, picked, data, n, count, s0, s1, s2, s3):
    """The rows of ``data`` of a minibatch of ``count`` of its ``n`` rows, summed: ``(Σ data[t,
    0], Σ data[t, 1], s0, s1, s2, s3)``.  For ``n ≤ 64`` the batch is :func:`subset_mask`'s,
    in registers (``picks`` and ``picked`` untouched); otherwise it is
    :func:`sample_without_replacement`'s (Floyd's), with ``picks`` and ``picked`` as there.
    """
    if n <= 64:
        mask, s0, s1, s2, s3 = subset_mask(n, count, s0, s1, s2, s3)
        ax, ay = masked_row_sums(data, mask)
        return ax, ay, s0, s1, s2, s3
    s0, s1, s2, s3 = sample_without_replacement(picks, picked, n, count, s0, s1, s2, s3)
    ax = 0.0
    ay = 0.0
    for q in range(count):
        ax += data[picks[q], 0]
        ay += data[picks[q], 1]
    return ax, ay, s0, s1, s2, s3


@njit(inline="always")
def lane_minibatch_sums(data, n, count, s0, s1, s2, s3, ax, ay):
    """:func:`minibatch_sum` for ``n ≤ 64`` in each lane of the state arrays ``s0 … s3``, into
    ``ax[lane], ay[lane]``: the same draws and additions per lane."""
    for lane in range(ax.shape[0]):
        mask, s0[lane], s1[lane], s2[lane], s3[lane] = subset_mask(n, count, s0[lane], s1[lane],
                                                                   s2[lane], s3[lane])
        ax[lane], ay[lane] = masked_row_sums(data, mask)


@njit(inline="always")
def _ziggurat_fields(bits):
    """``(layer, ±1.0, 53-bit magnitude)`` of one 64-bit draw (see :func:`normal_candidate`)."""
    layer = np.int64(bits >> uint64(56))
    sign = 1.0 - 2.0 * np.float64((bits >> uint64(55)) & uint64(1))
    return layer, sign, np.int64((bits >> uint64(2)) & uint64(0x1FFFFFFFFFFFFF))


@njit(inline="always")
def normal_candidate(bits):
    """The ziggurat's fast path for one 64-bit draw: ``(z, accepted)``.

    The top 8 bits pick the layer, bit 55 the sign, bits 2–54 the position in the layer (the
    lowest bits of xoshiro256+ are its weakest, so they only ever feed the magnitude's last
    digits).  The draw is accepted (≈ 98.5 %) when it falls in the layer's inner rectangle,
    tested on the integer.  Branch-free, so a loop of these over particles vectorises.
    """
    index = np.int64(bits >> uint64(55))
    magnitude = np.int64((bits >> uint64(2)) & uint64(0x1FFFFFFFFFFFFF))
    return (np.float64(magnitude) * ZIGGURAT_SIGNED_W[index],
            magnitude < ZIGGURAT_SIGNED_K[index])


@njit(inline="always")
def normal_finish(bits, s0, s1, s2, s3, zx, zf):
    """Complete a draw whose fast path rejected ``bits``: the wedge test or the tail, then fresh
    draws until one is accepted.  Returns ``(z, s0, s1, s2, s3)``.  ``zx, zf`` are
    :data:`ZIGGURAT_X` and :data:`ZIGGURAT_F` (the wedge test's chord band is theirs).

    Inline and call-free on purpose: a call to a helper for the rare branches made every draw
    ~8× slower (state tuple spilled through the call).
    """
    while True:
        layer, sign, magnitude = _ziggurat_fields(bits)
        x = np.float64(magnitude) * ZIGGURAT_W[layer]
        if magnitude < ZIGGURAT_K[layer]:
            return sign * x, s0, s1, s2, s3
        if layer == 0:  # tail beyond r (Marsaglia 1964)
            r = zx[1]
            a = 0.0
            while True:
                u1, s0, s1, s2, s3 = next_uniform(s0, s1, s2, s3)
                u2, s0, s1, s2, s3 = next_uniform(s0, s1, s2, s3)
                a = -math.log(1.0 - u1) / r
                if -2.0 * math.log(1.0 - u2) > a * a:
                    break
            return sign * (r + a), s0, s1, s2, s3
        u, s0, s1, s2, s3 = next_uniform(s0, s1, s2, s3)
        level = zf[layer] + u * (zf[layer + 1] - zf[layer])
        # the exponential only where the chord's band cannot tell (same answer, far cheaper)
        chord = ZIGGURAT_F[layer] + (ZIGGURAT_X[layer] - x) * WEDGE_SLOPE[layer]
        if level < chord + WEDGE_BELOW[layer] or (
                level <= chord + WEDGE_ABOVE[layer] and level < math.exp(-0.5 * x * x)):
            return sign * x, s0, s1, s2, s3
        bits, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)


@njit(inline="always")
def next_normal(s0, s1, s2, s3, zx, zf):
    """Standard normal by the ziggurat; returns ``(z, s0, s1, s2, s3)``."""
    bits, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
    z, accepted = normal_candidate(bits)
    if accepted:
        return z, s0, s1, s2, s3
    return normal_finish(bits, s0, s1, s2, s3, zx, zf)


@njit(nogil=True, cache=True)
def finish_pair(bits1, bits2, z1, z2, s0, s1, s2, s3, zx, zf):
    """Complete a pair of fast-path candidates ``(z1, z2)`` from draws ``bits1, bits2``: each
    rejected one is finished in order, first then second.  Returns ``(z1, z2, s0, s1, s2, s3)``.

    The step kernels draw their 2D noise as a pair — both 64-bit draws, both fast paths, then
    this for the ≈ 3 % of pairs with a rejection — so a vectorised loop over particles plus a
    scalar fix-up loop consumes every stream exactly as the scalar kernel does.  Deliberately
    not inlined (keeps the slow paths' registers out of the step loops); write the pair draw
    out at the call site too: wrapped in an inlined helper, numba spilled the state every draw.
    """
    if not normal_candidate(bits1)[1]:
        z1, s0, s1, s2, s3 = normal_finish(bits1, s0, s1, s2, s3, zx, zf)
    if not normal_candidate(bits2)[1]:
        z2, s0, s1, s2, s3 = normal_finish(bits2, s0, s1, s2, s3, zx, zf)
    return z1, z2, s0, s1, s2, s3


@njit(nogil=True, cache=True)
def finish_draw(bits, s0, s1, s2, s3):
    """:func:`normal_finish` with this module's tables, out of line: for loops over several
    particles at once, whose registers an inlined slow path would cost; it takes and returns
    scalars only.  Returns ``(z, s0, s1, s2, s3)``."""
    return normal_finish(bits, s0, s1, s2, s3, ZIGGURAT_X, ZIGGURAT_F)


@njit(inline="always")
def lane_normal_pair(s0, s1, s2, s3):
    """Two standard normals from the state ``(s0, s1, s2, s3)``, drawn as the scalar kernels'
    pair draw (both fast paths, then the rejected ones finished in order, out of line): for the
    loops that step several particles at once.  Returns ``(z1, z2, s0, s1, s2, s3)``."""
    b1, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
    b2, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
    z1, ok1 = normal_candidate(b1)
    z2, ok2 = normal_candidate(b2)
    if not (ok1 and ok2):  # finish_pair's order: first, then second
        if not ok1:
            z1, s0, s1, s2, s3 = finish_draw(b1, s0, s1, s2, s3)
        if not ok2:
            z2, s0, s1, s2, s3 = finish_draw(b2, s0, s1, s2, s3)
    return z1, z2, s0, s1, s2, s3


@njit(cache=True)
def draw_normals(states: np.ndarray, count: int, zx: np.ndarray, zf: np.ndarray) -> np.ndarray:
    """``count`` normals from each stream, shape ``(len(states), count)``; advances the states."""
    out = np.empty((states.shape[0], count))
    for i in range(states.shape[0]):
        s0, s1, s2, s3 = states[i, 0], states[i, 1], states[i, 2], states[i, 3]
        for k in range(count):
            out[i, k], s0, s1, s2, s3 = next_normal(s0, s1, s2, s3, zx, zf)
        states[i, 0], states[i, 1], states[i, 2], states[i, 3] = s0, s1, s2, s3
    return out


@njit(cache=True)
def draw_uniforms(states: np.ndarray, count: int) -> np.ndarray:
    """``count`` uniforms in [0, 1) from each stream, shape ``(len(states), count)``."""
    out = np.empty((states.shape[0], count))
    for i in range(states.shape[0]):
        s0, s1, s2, s3 = states[i, 0], states[i, 1], states[i, 2], states[i, 3]
        for k in range(count):
            out[i, k], s0, s1, s2, s3 = next_uniform(s0, s1, s2, s3)
        states[i, 0], states[i, 1], states[i, 2], states[i, 3] = s0, s1, s2, s3
    return out
