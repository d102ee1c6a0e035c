"""Human units for sizes, bandwidths and times.

Sizes follow the nccl-tests convention: a bare ``K``/``M``/``G``/``T`` suffix is a power of
1024 (``64M`` is ``64 * 2**20`` bytes), ``KiB``/``MiB``/... are powers of 1024 too, and
``KB``/``MB``/... are powers of 1000. Bandwidths are bytes per second: ``Gbps`` and ``Gb/s``
are gigabits (``100Gbps`` is ``12.5e9`` B/s), ``GB/s`` gigabytes and ``GiB/s`` gibibytes.
Times are seconds: ``s``, ``ms``, ``us`` (or ``µs``), ``ns``.

Every parser passes numbers through unchanged (after checking them) and raises a
``ValueError`` that quotes the bad value and lists the accepted forms.
"""

from __future__ import annotations

import math
import numbers
import re

__all__ = [
    "format_bandwidth",
    "format_bytes",
    "format_time",
    "parse_bandwidth",
    "parse_bytes",
    "parse_time",
]

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_SPLIT = re.compile(rf"^\s*({_NUMBER})\s*(\S*?)\s*$")
_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}

_BYTES_HELP = (
    "use a number of bytes or a unit such as 64MiB, 1K (=1024), 64M (=64*2**20), 2KB (=2000)"
)
_BW_HELP = "use a number of bytes/s or a unit such as 100Gbps, 25GB/s, 25GiB/s"
_TIME_HELP = "use a number of seconds or a unit such as 2us, 1.5ms, 100ns, 1s"

_BYTES_UNIT = re.compile(r"^([kKmMgGtTpP]?)(i?)(B?)$")
_BW_UNIT = re.compile(r"^([kKmMgGtTpP]?)(i?)(bps|b/s|bit/s|bits/s|Bps|B/s)$")
_TIME_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "ms": 1e-3,
    "msec": 1e-3,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # greek mu
    "usec": 1e-6,
    "ns": 1e-9,
    "nsec": 1e-9,
}


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _split(s, what: str, help_: str) -> tuple[float, str]:
    if not isinstance(s, str):
        raise ValueError(f"cannot parse {what} {s!r}: {help_}")
    m = _SPLIT.match(s)
    if m is None:
        raise ValueError(f"cannot parse {what} {s!r}: {help_}")
    return float(m.group(1)), m.group(2)


def parse_bytes(s: str | int) -> int:
    """Parse a size in bytes.

    Parameters
    ----------
    s : str or int
        ``"64MiB"``, ``"1K"`` (1024), ``"64M"`` (``64 * 2**20``), ``"2KB"`` (2000),
        ``"1.5MiB"``, ``"512"``; integers (and integral floats) pass through.

    Returns
    -------
    int
        The size in bytes (non-negative), rounded to a whole byte when a unit scales it.

    Examples
    --------
    >>> parse_bytes("64M"), parse_bytes("2KB"), parse_bytes("1.5MiB"), parse_bytes(512)
    (67108864, 2000, 1572864, 512)
    """
    if _is_number(s):
        value = float(s)
        if not math.isfinite(value) or value != int(value) or value < 0:
            raise ValueError(f"cannot parse size {s!r}: {_BYTES_HELP}")
        return int(s)
    number, unit = _split(s, "size", _BYTES_HELP)
    m = _BYTES_UNIT.match(unit)
    if m is None:
        raise ValueError(f"cannot parse size {s!r}: unknown unit {unit!r}; {_BYTES_HELP}")
    prefix, binary, byte = m.groups()
    power = _POWER[prefix.lower()]
    base = 1000 if (byte and not binary and power) else 1024
    value = number * base**power
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"cannot parse size {s!r}: sizes are finite and non-negative")
    if power == 0 and abs(value - round(value)) > 1e-9 * max(1.0, value):
        raise ValueError(f"cannot parse size {s!r}: {value} is not a whole number of bytes")
    return int(round(value))


def parse_bandwidth(s: str | float) -> float:
    """Parse a bandwidth in bytes per second.

    Parameters
    ----------
    s : str or float
        ``"100Gbps"``/``"400Gb/s"`` (bits per second, decimal prefixes), ``"25GB/s"``
        (bytes, decimal), ``"25GiB/s"`` (bytes, binary), or a number of bytes per second
        (``"1e9"``, ``25e9``).

    Returns
    -------
    float
        Bytes per second, finite and positive.

    Examples
    --------
    >>> parse_bandwidth("100Gbps"), parse_bandwidth("25GB/s"), parse_bandwidth(1e9)
    (12500000000.0, 25000000000.0, 1000000000.0)
    """
    if _is_number(s):
        value = float(s)
    else:
        number, unit = _split(s, "bandwidth", _BW_HELP)
        if unit == "":
            value = number
        else:
            m = _BW_UNIT.match(unit)
            if m is None:
                raise ValueError(f"cannot parse bandwidth {s!r}: {_BW_HELP}")
            prefix, binary, base_unit = m.groups()
            scale = (1024 if binary else 1000) ** _POWER[prefix.lower()]
            bits = base_unit[0] == "b"
            value = number * scale / (8 if bits else 1)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"bandwidth must be finite and positive, got {s!r}; {_BW_HELP}")
    return value


def parse_time(s: str | float) -> float:
    """Parse a time in seconds.

    Parameters
    ----------
    s : str or float
        ``"2us"`` (or ``"2µs"``), ``"1.5ms"``, ``"100ns"``, ``"1s"``, or a number of seconds
        (``"3e-6"``, ``3e-6``).

    Returns
    -------
    float
        Seconds, finite and non-negative.

    Examples
    --------
    >>> parse_time("2us"), parse_time("1.5ms"), parse_time(3e-6)
    (2e-06, 0.0015, 3e-06)
    """
    if _is_number(s):
        value = float(s)
    else:
        number, unit = _split(s, "time", _TIME_HELP)
        if unit == "":
            value = number
        elif unit in _TIME_UNITS:
            # divide by the inverse so that "2us" gives exactly 2e-06
            value = number / round(1.0 / _TIME_UNITS[unit])
        else:
            raise ValueError(f"cannot parse time {s!r}: unknown unit {unit!r}; {_TIME_HELP}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"time must be finite and non-negative, got {s!r}; {_TIME_HELP}")
    return value


def _fmt(value: float, unit: str) -> str:
    return f"{value:.4g}{unit}"


def format_bytes(n: int) -> str:
    """Format a size with binary prefixes, e.g. for table rows.

    Examples
    --------
    >>> format_bytes(512), format_bytes(67108864), format_bytes(1572864)
    ('512B', '64MiB', '1.5MiB')
    """
    n = float(n)
    for power, unit in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
        if abs(n) >= 1024**power:
            return _fmt(n / 1024**power, unit)
    return _fmt(n, "B")


def format_bandwidth(bps: float) -> str:
    """Format bytes per second with decimal prefixes.

    Examples
    --------
    >>> format_bandwidth(12.5e9), format_bandwidth(450e9), format_bandwidth(1e12)
    ('12.5GB/s', '450GB/s', '1TB/s')
    """
    bps = float(bps)
    for power, unit in ((4, "TB/s"), (3, "GB/s"), (2, "MB/s"), (1, "KB/s")):
        if abs(bps) >= 1000**power:
            return _fmt(bps / 1000**power, unit)
    return _fmt(bps, "B/s")


def format_time(s: float) -> str:
    """Format seconds with the largest unit that keeps the number >= 1.

    Examples
    --------
    >>> format_time(2e-6), format_time(1.5e-3), format_time(1e-7), format_time(3.0)
    ('2us', '1.5ms', '100ns', '3s')
    """
    s = float(s)
    if s == 0 or abs(s) >= 1:
        return _fmt(s, "s")
    for scale, unit in ((1e3, "ms"), (1e6, "us")):
        if abs(s) * scale >= 1 - 1e-12:
            return _fmt(s * scale, unit)
    return _fmt(s * 1e9, "ns")
