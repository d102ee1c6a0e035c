"""Host buffers with one backing, whatever the allocator did before.

``np.empty`` of a large buffer is served by glibc either from a fresh mapping (which numpy
advises into transparent huge pages from 4 MiB on) or, once a freed mapping has raised
glibc's dynamic mmap threshold, from heap pages some earlier buffer already touched in 4 KiB
pages. The two run a collective at different speeds: on a 2-vCPU AMD EPYC VM the same 2-rank
ring schedule at 16 MiB took 3.2-3.3 ms as the first case of a sweep and 2.7-2.8 ms as the
sixth, and identical schedules measured 1.1-1.4x apart from 4 MiB in every run of a sweep, which
no model of the machine can predict. :func:`host_empty` gives every buffer from
:data:`MAPPED_FROM` bytes on a private anonymous mapping of its own in whole huge pages,
aligned to and advised into them (where the kernel offers them), so that every executor
scratch, benchmark buffer and calibration buffer of that size has the same backing. The
threshold is well below a huge page on purpose: with one at 2 MiB, the calibration's 1 MiB
exchange (one 2 MiB buffer of two chunks) ran on huge pages and the 1 MiB recursive doubling
(three 1 MiB buffers) on 4 KiB pages, and was predicted 43% fast.
"""

from __future__ import annotations

import mmap

import numpy as np

__all__ = ["HUGE_PAGE", "MAPPED_FROM", "host_empty"]

#: An x86-64 transparent huge page; mappings are whole ones, aligned to one.
HUGE_PAGE = 2 << 20
#: Buffers of at least this many bytes get a mapping of their own (below, 16 pages or fewer:
#: the TLB does not care, and a mapping would cost a huge page per buffer).
MAPPED_FROM = 64 << 10


def host_empty(n: int, dtype) -> np.ndarray:
    """An uninitialised host array of ``n`` elements of ``dtype`` (as ``np.empty``).

    From :data:`MAPPED_FROM` bytes on, the array lies on a private anonymous mapping of its
    own, whole huge pages aligned to one and advised ``MADV_HUGEPAGE`` where the platform has
    it (so a 64 KiB buffer occupies 2 MiB once touched); the mapping is released when the
    array (and every view of it) is gone.

    >>> a = host_empty(1 << 20, np.float32)
    >>> a.nbytes, a.ctypes.data % HUGE_PAGE, a.flags.writeable
    (4194304, 0, True)
    >>> host_empty(MAPPED_FROM // 8, np.float64).ctypes.data % HUGE_PAGE
    0
    >>> host_empty(3, "int64").shape
    (3,)
    """
    dtype = np.dtype(dtype)
    nbytes = int(n) * dtype.itemsize
    if nbytes < MAPPED_FROM:
        return np.empty(n, dtype=dtype)
    size = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
    # the extra huge page lets the array start on a huge-page boundary; untouched, it costs
    # address space only
    region = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    raw = np.frombuffer(region, dtype=np.uint8)
    offset = (-raw.ctypes.data) % HUGE_PAGE
    if hasattr(mmap, "MADV_HUGEPAGE"):
        region.madvise(mmap.MADV_HUGEPAGE, offset, size)
    return raw[offset:offset + nbytes].view(dtype)
