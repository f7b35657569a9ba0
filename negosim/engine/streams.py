"""Keyed random streams: every uniform is a pure function of (seed, replication, stream, draw).

A replication needs no generator object of its own. The ``k``-th uniform that
stream ``stream`` of replication ``rep`` of a run seeded ``seed`` draws is::

    run   = mix(mix(seed_lo ^ SEED) ^ seed_hi)        # the run's key (seed may exceed 64 bits)
    repk  = mix(run ^ mix(rep + REP))                  # the replication's key
    key   = mix(repk ^ stream)                         # the stream's key
    u_k   = (mix(key + (k + 1) * GAMMA) >> 11) * 2**-53

where ``mix`` is the SplitMix64 finaliser (Stafford's "Mix13", as in Java's
``SplittableRandom`` and numpy's seeding) and ``GAMMA`` is SplitMix64's odd
increment, so each stream is a SplitMix64 sequence started at its own key;
all arithmetic is modulo 2**64. ``stream`` is a 64-bit number fixed at compile
time from the *name* of what draws (``"delay:action:us_decides"``,
``"choice:action:us_decides"``, ``"arrival:us:0"``, ...), see
:func:`stream_id`.

Why this layout:

* **Workers and batching cannot matter**: a draw depends on nothing but its
  key, so any split of replications among threads, processes or Dask workers
  gives the same numbers.
* **One stream per clock**: the number of draws one action makes (how often it
  is re-enabled, whether it has options) never shifts the draws of another, so
  under common random numbers a parameter with no effect gives exactly the
  same replication everywhere, and two files that share action names share
  their streams.
* **Vectorisable**: :func:`uniforms` computes any set of (replication, stream,
  draw) triples at once in numpy with the same bits, which is what a batch
  engine needs to reproduce a replication without replaying it.
* **Cheap**: no per-replication ``SeedSequence`` or bit generator (those cost
  about 40 µs each here, more than a whole replication should); a draw is one
  64-bit mix in Python.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

_M = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (odd; 2**64 / golden ratio)
SEED = 0x6A09E667F3BCC909  # fractional digits of sqrt(2): separates the key spaces
REP = 0xBB67AE8584CAA73B  # ... of sqrt(3)
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB
_UNIT = 2.0**-53


def mix(z: int) -> int:
    """SplitMix64's finaliser on a 64-bit integer (a bijection of [0, 2**64))."""
    z = ((z ^ (z >> 30)) * _C1) & _M
    z = ((z ^ (z >> 27)) * _C2) & _M
    return z ^ (z >> 31)


def stream_id(name: str) -> int:
    """The 64-bit stream number of a named source of randomness (BLAKE2b of the name)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


@lru_cache(maxsize=256)
def run_key(seed: int) -> int:
    """The key of a run seeded ``seed`` (any non-negative integer below 2**128)."""
    if seed < 0 or seed >> 128:
        raise ValueError(f"seed must be between 0 and 2**128 - 1, found {seed}")
    return mix(mix((seed & _M) ^ SEED) ^ (seed >> 64))


def replication_key(run: int, rep: int) -> int:
    """The key of replication ``rep`` of the run whose key is ``run``."""
    return mix(run ^ mix((rep + REP) & _M))


def stream_key(repk: int, stream: int) -> int:
    """The key of stream ``stream`` inside a replication."""
    return mix(repk ^ stream)


def uniform(key: int, k: int) -> float:
    """The ``k``-th uniform in [0, 1) of the stream whose key is ``key`` (k = 0, 1, ...)."""
    return (mix((key + (k + 1) * GAMMA) & _M) >> 11) * _UNIT


PREFETCH = 3
"""Draws per stream computed ahead in numpy for blocks of replications (see :func:`block`)."""


class Draws:
    """One replication's draws: a counter per stream.

    Streams are numbered 0..n-1 by the compiler; ``ids[i]`` is stream ``i``'s
    64-bit number. The first :data:`PREFETCH` draws of every stream may come
    precomputed (``first``, from :func:`block`); later ones are computed here
    with the same bits. An object of this class belongs to one replication, so
    nothing here is shared between threads.
    """

    __slots__ = ("_seed", "_rep", "_ids", "_keys", "next", "_first")

    def __init__(
        self, ids: tuple[int, ...], seed: int, rep: int, first: list[float] | None = None
    ) -> None:
        self._seed, self._rep = seed, rep
        self._ids = ids
        n = len(ids)
        self._keys: dict[int, int] | None = None  # -1: the replication's key
        self.next: list[int] = [0] * n  # how many draws each stream has made
        self._first = first

    def u(self, stream: int) -> float:
        """The next uniform of stream ``stream``."""
        k = self.next[stream]
        self.next[stream] = k + 1
        if k < PREFETCH and self._first is not None:
            return self._first[stream * PREFETCH + k]
        keys = self._keys
        if keys is None:
            keys = self._keys = {-1: replication_key(run_key(self._seed), self._rep)}
        key = keys.get(stream)
        if key is None:
            key = keys[stream] = mix(keys[-1] ^ self._ids[stream])
        z = (key + (k + 1) * GAMMA) & _M
        z = ((z ^ (z >> 30)) * _C1) & _M
        z = ((z ^ (z >> 27)) * _C2) & _M
        return ((z ^ (z >> 31)) >> 11) * _UNIT


# --- the same bits, vectorised --------------------------------------------------


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_C1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_C2)
    return z ^ (z >> np.uint64(31))


def _mix_inplace(z: np.ndarray) -> np.ndarray:
    """:func:`_mix_np` on an array of uint64 that the caller owns, overwriting it: the
    same bits with one temporary instead of seven (the hot path of the batch engine)."""
    t = np.empty_like(z)
    np.right_shift(z, np.uint64(30), out=t)
    z ^= t
    z *= np.uint64(_C1)
    np.right_shift(z, np.uint64(27), out=t)
    z ^= t
    z *= np.uint64(_C2)
    np.right_shift(z, np.uint64(31), out=t)
    z ^= t
    return z


def uniforms(seed: int, reps: np.ndarray, stream: int, draws: np.ndarray) -> np.ndarray:
    """Uniforms of ``stream`` for replications ``reps`` at draw numbers ``draws``.

    ``reps`` and ``draws`` broadcast against each other; the result equals
    :meth:`Draws.u` called the corresponding number of times, bit for bit.
    """
    with np.errstate(over="ignore"):
        run = np.uint64(run_key(seed))
        r = np.asarray(reps, dtype=np.uint64)
        repk = _mix_np(run ^ _mix_np(r + np.uint64(REP)))
        key = _mix_np(repk ^ np.uint64(stream))
        k = np.asarray(draws, dtype=np.uint64)
        z = _mix_np(key + (k + np.uint64(1)) * np.uint64(GAMMA))
    return (z >> np.uint64(11)).astype(np.float64) * _UNIT


def block(seed: int, start: int, stop: int, ids: tuple[int, ...]) -> list[list[float]]:
    """The first :data:`PREFETCH` draws of every stream for replications ``start..stop-1``.

    One list per replication, stream-major (``row[stream * PREFETCH + k]``),
    for :class:`Draws`; computed in numpy, so a replication pays no Python
    hashing for most of its draws.
    """
    reps = np.arange(start, stop, dtype=np.uint64)[:, None, None]
    streams = np.asarray(ids, dtype=np.uint64)[None, :, None]
    k = np.arange(PREFETCH, dtype=np.uint64)[None, None, :]
    with np.errstate(over="ignore"):
        run = np.uint64(run_key(seed))
        repk = _mix_np(run ^ _mix_np(reps + np.uint64(REP)))
        z = _mix_np(_mix_np(repk ^ streams) + (k + np.uint64(1)) * np.uint64(GAMMA))
    u = (z >> np.uint64(11)).astype(np.float64) * _UNIT
    return u.reshape(stop - start, -1).tolist()


def stream_keys(seed: int, reps: np.ndarray, ids: tuple[int, ...]) -> np.ndarray:
    """The keys of streams ``ids`` for replications ``reps``: shape (len(reps), len(ids)).

    With :func:`keyed_uniforms`, the same bits as :func:`uniforms` and
    :meth:`Draws.u`, for an engine that draws often from the same replications.
    """
    r = np.asarray(reps, dtype=np.uint64)[:, None]
    streams = np.asarray(ids, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        run = np.uint64(run_key(seed))
        repk = _mix_np(run ^ _mix_np(r + np.uint64(REP)))
        return _mix_np(repk ^ streams)


def replication_keys(seed: int, reps: np.ndarray) -> np.ndarray:
    """The keys of replications ``reps`` of a run seeded ``seed`` (:func:`replication_key`
    vectorised), for :func:`stream_keys_by_stream`."""
    with np.errstate(over="ignore"):
        z = np.asarray(reps, dtype=np.uint64) + np.uint64(REP)
        _mix_inplace(z)
        z ^= np.uint64(run_key(seed))
        return _mix_inplace(z)


def stream_keys_by_stream(repk: np.ndarray, ids: tuple[int, ...]) -> np.ndarray:
    """The keys of streams ``ids`` for the replications whose keys are ``repk``, shape
    (len(ids), len(repk)): :func:`stream_keys` transposed, computed in that layout (one
    stream's keys for many replications are then one run of memory)."""
    out = np.empty((len(ids), len(repk)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j, sid in enumerate(ids):
            np.bitwise_xor(repk, np.uint64(sid), out=out[j])
            _mix_inplace(out[j])
    return out


def uniforms_at(z: np.ndarray) -> np.ndarray:
    """The uniforms at ``z = key + (k + 1) * GAMMA`` (mod 2**64), a stream's key and
    draw number in one word: an engine can keep ``z`` per stream and add GAMMA at each
    draw. ``z`` must be a uint64 array the caller owns: it is overwritten. (Integer
    arithmetic on arrays wraps around without a warning: no ``errstate`` needed,
    whose cost shows in the batch engine's many small draws.)"""
    _mix_inplace(z)
    z >>= np.uint64(11)
    u = z.astype(np.float64)
    u *= _UNIT
    return u


def keyed_uniforms(keys: np.ndarray, draws: np.ndarray | int) -> np.ndarray:
    """The uniforms at draw numbers ``draws`` of the streams whose keys are ``keys``
    (from :func:`stream_keys`; the two broadcast)."""
    with np.errstate(over="ignore"):
        k = np.asarray(draws, dtype=np.uint64)
        z = np.asarray(keys + (k + np.uint64(1)) * np.uint64(GAMMA))  # new: mixed in place
        _mix_inplace(z)
        z >>= np.uint64(11)
    u = z.astype(np.float64)
    u *= _UNIT
    return u if u.ndim else u[()]
