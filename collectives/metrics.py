"""Bandwidth figures as nccl-tests defines them (doc/PERFORMANCE.md)."""

from __future__ import annotations

__all__ = ["algbw", "bus_factor", "busbw"]


def bus_factor(collective: str, nranks: int) -> float:
    """busbw / algbw: ``2(p-1)/p`` for all-reduce, ``(p-1)/p`` for reduce-scatter and all-gather,
    1 for reduce and broadcast.

    >>> bus_factor("allreduce", 4)
    1.5
    """
    p = nranks
    if collective == "allreduce":
        return 2.0 * (p - 1) / p
    if collective in ("reducescatter", "allgather"):
        return (p - 1) / p
    if collective in ("reduce", "broadcast"):
        return 1.0
    raise ValueError(f"bus_factor: unknown collective {collective!r}")


def algbw(nbytes: float, seconds: float) -> float:
    """Algorithm bandwidth in bytes/s: the full vector's size over the time (0 for 0 s)."""
    return nbytes / seconds if seconds > 0 else 0.0


def busbw(collective: str, nranks: int, nbytes: float, seconds: float) -> float:
    """Bus bandwidth in bytes/s: algbw times the collective's bus factor."""
    return algbw(nbytes, seconds) * bus_factor(collective, nranks)
