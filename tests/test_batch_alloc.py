"""The batch engine's allocator settings (negosim/engine/batch/alloc.py): set once per
process, only on glibc, never over the user's own."""

from __future__ import annotations

from typing import Any

import pytest

from negosim.engine.batch import alloc


class _Libc:
    """Stands for the C library: records the calls of ``mallopt`` (a function, so that
    ``argtypes`` can be set on it as on a ctypes function)."""

    def __init__(self, answer: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

        def mallopt(param: int, value: int) -> int:
            self.calls.append((param, value))
            return self.answer

        self.mallopt = mallopt


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> _Libc:
    fake = _Libc()
    monkeypatch.setattr(alloc, "_done", False)
    monkeypatch.setattr(alloc, "_glibc", lambda: True)
    monkeypatch.setattr(alloc.ctypes, "CDLL", lambda name: fake)
    for k in (*alloc._USER_SETTINGS, "GLIBC_TUNABLES", alloc.OPT_OUT):
        monkeypatch.delenv(k, raising=False)
    return fake


def test_sets_both_thresholds_once(libc: _Libc) -> None:
    assert alloc.keep_freed_memory() is True
    assert libc.calls == [(alloc.M_MMAP_THRESHOLD, 32 << 20), (alloc.M_TRIM_THRESHOLD, 128 << 20)]
    assert alloc.keep_freed_memory() is False
    assert len(libc.calls) == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MALLOC_TRIM_THRESHOLD_", "1000000"),
        ("MALLOC_MMAP_THRESHOLD_", "65536"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000"),
    ],
)
def test_leaves_the_users_settings(
    libc: _Libc, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert alloc.keep_freed_memory() is False
    assert libc.calls == []


def test_other_tunables_do_not_count(libc: _Libc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=2048")
    assert alloc.keep_freed_memory() is True
    assert len(libc.calls) == 2


def test_nothing_elsewhere_than_glibc(libc: _Libc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alloc, "_glibc", lambda: False)
    assert alloc.keep_freed_memory() is False
    assert libc.calls == []


def test_a_refused_setting_is_reported(libc: _Libc) -> None:
    libc.answer = 0  # mallopt returns 0 on error
    assert alloc.keep_freed_memory() is False


def test_no_mallopt_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: Any) -> Any:
        raise OSError("no C library")

    monkeypatch.setattr(alloc, "_done", False)
    monkeypatch.setattr(alloc, "_glibc", lambda: True)
    monkeypatch.setattr(alloc.ctypes, "CDLL", missing)
    for k in (*alloc._USER_SETTINGS, "GLIBC_TUNABLES"):
        monkeypatch.delenv(k, raising=False)
    assert alloc.keep_freed_memory() is False


def test_the_running_process_is_recognised() -> None:
    import os
    import sys

    expected = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    assert alloc._glibc() is expected


@pytest.mark.parametrize("value", ["0", "no", "false", "off"])
def test_negosim_keep_freed_memory_0_opts_out(
    libc: _Libc, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(alloc.OPT_OUT, value)
    assert alloc.keep_freed_memory() is False
    assert libc.calls == []


def test_negosim_keep_freed_memory_1_keeps_the_default(
    libc: _Libc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(alloc.OPT_OUT, "1")
    assert alloc.keep_freed_memory() is True
