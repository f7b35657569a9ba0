"""Keep the memory of one chunk of the batch engine for the next (glibc's ``mallopt``).

A chunk of the batch engine allocates tens of megabytes of arrays (most of them
hundreds of kilobytes each, at 50,000 replications) and frees them all when it
ends. With glibc's default, adaptive thresholds the C allocator hands much of
that memory back to the kernel, either because an array was large enough to
get its own ``mmap`` or because the top of the heap was trimmed, and the next
chunk takes it back one page fault at a time. Which chunks do so depends on
the order of earlier allocations; on the development machine (a virtual
machine, where a page fault costs about 4 µs) a 50,000-row munich chunk that
faulted took about 4,700 page faults and 20-35% more CPU time than one that
did not, and a process could fault in every chunk or in none after its third.

:func:`keep_freed_memory` fixes the two thresholds once per process: arrays
below 32 MiB (glibc's largest allowed threshold) come from the heap, and up to
:data:`TRIM` of free memory at its top stays mapped, so each chunk reuses the
pages of the one before. The process then holds on to up to :data:`TRIM` of
memory it freed (a chunk's arrays are bounded at about ``CHUNK_BYTES``). It
does nothing elsewhere than on glibc, or where the user has set the
allocator's thresholds through its environment variables, or where
``NEGOSIM_KEEP_FREED_MEMORY=0`` is set (for a long-lived process, a notebook
kernel or a server, that would rather give memory back than save page faults:
the batch engine then runs about 20-35% slower on the chunks that fault). It
changes no result: only where the memory comes from.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP = 32 << 20  # glibc's largest allowed mmap threshold on 64-bit systems
TRIM = 128 << 20  # free memory kept at the top of the heap
OPT_OUT = "NEGOSIM_KEEP_FREED_MEMORY"  # "0": leave the allocator as it is
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")

_done = False


def _glibc() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (ValueError, OSError):
        return False


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (once per process); whether they were set."""
    global _done
    if _done:
        return False
    _done = True
    if os.environ.get(OPT_OUT, "").strip() in ("0", "no", "false", "off"):
        return False
    if not _glibc() or any(k in os.environ for k in _USER_SETTINGS):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library of this process
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # The mmap threshold first: setting either turns glibc's adaptive thresholds off.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM))
