"""The one chunk-and-fold loop (runs, comparisons and sweep points all use it)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pytest

from negosim.runs.runner import fold_chunks, fold_groups


@dataclass
class Count:
    runs: int = 0
    seen: list[int] = field(default_factory=list)

    def merge(self, other: Count) -> Count:
        self.runs += other.runs
        self.seen += other.seen
        return self


def chunk(arg: tuple[int, int]) -> Count:
    a, b = arg
    if a < 0:
        raise ValueError(f"bad chunk {a}")
    return Count(b - a, list(range(a, b)))


class Lazy:
    """Futures finish only when waited for, one at a time: records how many were out."""

    workers = 3
    name = "lazy"

    def __init__(self) -> None:
        self.out: list[tuple[Future[Any], Any, Any]] = []
        self.most = 0

    def submit(self, fn: Any, arg: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        self.out.append((fut, fn, arg))
        self.most = max(self.most, len(self.out))
        return fut

    def wait_any(self, futures: list[Future[Any]]) -> list[Future[Any]]:
        fut, fn, arg = self.out.pop(0)
        try:
            fut.set_result(fn(arg))
        except Exception as exc:  # noqa: BLE001 - handed over like a real backend
            fut.set_exception(exc)
        return [fut]


def test_groups_fold_lazily_with_bounded_chunks_in_flight() -> None:
    be = Lazy()
    made: list[str] = []

    def groups() -> Any:
        for g in "abc":
            made.append(g)
            yield g, Count(), [(chunk, (i * 10, i * 10 + 10)) for i in range(4)]

    done = []
    progress: list[int] = []
    for key, total, error in fold_groups(be, groups(), 2, progress.append):
        assert error is None and total.runs == 40 and sorted(total.seen) == list(range(40))
        done.append((key, list(made)))
    assert be.most == 2
    assert done == [("a", ["a", "b"]), ("b", ["a", "b", "c"]), ("c", ["a", "b", "c"])]
    assert progress == [10] * 12


def test_a_failing_chunk_fails_its_group_only_when_caught() -> None:
    groups = [
        ("ok", Count(), [(chunk, (0, 5))]),
        ("bad", Count(), [(chunk, (-1, 5)), (chunk, (5, 7))]),
    ]
    out = {k: (t.runs, e) for k, t, e in fold_groups(Lazy(), groups, 4, catch=True)}
    assert out["ok"] == (5, None)
    assert out["bad"][0] == 2 and isinstance(out["bad"][1], ValueError)
    with pytest.raises(ValueError, match="bad chunk"):
        list(fold_groups(Lazy(), groups, 4))


def test_fold_chunks_covers_the_range_once() -> None:
    total = fold_chunks(Lazy(), range(100, 1300), lambda a, b: (chunk, (a, b)), Count())
    assert sorted(total.seen) == list(range(100, 1300))
