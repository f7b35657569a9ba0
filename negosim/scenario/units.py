"""Durations and calendar times as scenario authors write them.

Durations read like ``36h``, ``2d``, ``90min``, ``1d 6h`` or ``-2h`` and are
converted to hours, the engine's unit of time. Datetimes are written in the
venue's local time (``2023-02-17 14:00``) unless they carry an explicit
offset; either way they become time-zone-aware :class:`datetime` objects.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UNIT_HOURS = {
    "w": 168.0,
    "week": 168.0,
    "weeks": 168.0,
    "d": 24.0,
    "day": 24.0,
    "days": 24.0,
    "h": 1.0,
    "hr": 1.0,
    "hour": 1.0,
    "hours": 1.0,
    "min": 1 / 60,
    "m": 1 / 60,
    "minute": 1 / 60,
    "minutes": 1 / 60,
    "s": 1 / 3600,
    "sec": 1 / 3600,
}
# Matched only where the previous part ended (``match(s, pos)``, never a scan), on
# text of bounded length: reading a duration is linear, whatever it is sent.
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)", re.IGNORECASE)
MAX_DURATION_CHARS = 64
"""Longest duration text read (``1d 6h 30min`` is 11); longer is refused at once."""
MAX_NUMBER_CHARS = 20
"""Longest number in a duration (digits and point)."""


def parse_duration(text: str) -> float:
    """Return the duration ``text`` in hours; raise ValueError if it is not one.

    >>> parse_duration("1d 6h")
    30.0
    >>> parse_duration("90min")
    1.5
    """
    s = text.strip()
    sign = 1.0
    if s.startswith("-"):
        sign, s = -1.0, s[1:]
    elif s.startswith("+"):
        s = s[1:]
    if not s:
        raise ValueError(f"{text!r} is not a duration (write e.g. 36h, 2d, 90min)")
    if len(s) > MAX_DURATION_CHARS:
        raise ValueError(
            f"{quote_short(text)} is not a duration: longer than {MAX_DURATION_CHARS} characters"
        )
    total, pos, end = 0.0, 0, len(s.rstrip())
    while pos < end and (m := _PART.match(s, pos)):
        if len(m.group(1)) > MAX_NUMBER_CHARS:
            raise ValueError(
                f"{quote_short(text)} is not a duration: a number longer than {MAX_NUMBER_CHARS} "
                "characters"
            )
        unit = m.group(2).lower()
        if unit not in _UNIT_HOURS:
            raise ValueError(f"unknown time unit {m.group(2)!r} in {text!r} (use min, h, d or w)")
        total += float(m.group(1)) * _UNIT_HOURS[unit]
        pos = m.end()
    if pos != end or pos == 0:
        raise ValueError(f"{text!r} is not a duration (write e.g. 36h, 2d, 90min)")
    return sign * total


def quote_short(text: str, limit: int = 40) -> str:
    """``text`` quoted, cut short if long (a message must not echo a megabyte)."""
    return (
        repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"
    )


def is_duration(text: str) -> bool:
    """Whether :func:`parse_duration` reads ``text``: a duration with a unit (``36h``)."""
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True


def format_duration(hours: float) -> str:
    """A short human form of ``hours``: ``1d 6h``, ``45min``."""
    sign = "-" if hours < 0 else ""
    if not math.isfinite(hours):  # e.g. the delay of a clock with a vanishing rate
        return sign + "∞"
    minutes = round(abs(hours) * 60)
    d, rem = divmod(minutes, 24 * 60)
    h, m = divmod(rem, 60)
    parts = [f"{d}d"] * bool(d) + [f"{h}h"] * bool(h) + [f"{m}min"] * bool(m)
    return sign + (" ".join(parts) or "0min")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError with a hint if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
        ) from exc


def parse_datetime(text: str, tz: ZoneInfo) -> datetime:
    """Parse an ISO-like datetime; naive times are venue-local (``tz``)."""
    s = text.strip().replace("T", " ", 1) if isinstance(text, str) else text
    try:
        dt = datetime.fromisoformat(s)
    except (TypeError, ValueError) as exc:
        what = quote_short(text) if isinstance(text, str) else repr(text)
        raise ValueError(f"{what} is not a date and time (write e.g. 2023-02-17 14:00)") from exc
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt


def hours_between(a: datetime, b: datetime) -> float:
    """Hours from ``a`` to ``b`` in physical time (correct across DST changes)."""
    # Subtracting two datetimes that share a tzinfo compares wall clocks, so
    # go through UTC to count the hour a DST change adds or removes.
    utc = ZoneInfo("UTC")
    return (b.astimezone(utc) - a.astimezone(utc)).total_seconds() / 3600.0


def at_hours(start: datetime, hours: float, tz: ZoneInfo) -> datetime:
    """The venue-local datetime ``hours`` after ``start`` (physical time)."""
    utc = start.astimezone(ZoneInfo("UTC")) + timedelta(hours=hours)
    return utc.astimezone(tz)


def zone_names(start: datetime, hours: float, tz: ZoneInfo) -> list[tuple[datetime, str]]:
    """The zone's abbreviations in force from ``start`` for ``hours``: ``(since, name)``
    pairs, the first since ``start``, then one per change of UTC offset (a DST change),
    each at its first local minute.

    So that a timeline says "CEST" after the spring change instead of labelling every
    time with the start's "CET". zoneinfo does not list its transitions, so this looks
    hour by hour (offsets change on the hour or half hour) and then narrows to the minute.
    """
    utc = start.astimezone(ZoneInfo("UTC"))
    first = utc.astimezone(tz)
    out = [(first, first.strftime("%Z"))]
    offset = first.utcoffset()
    before = 0.0  # hours after start known to have ``offset``
    for h in range(1, math.ceil(max(hours, 0.0)) + 1):
        now = min(float(h), hours)
        if (utc + timedelta(hours=now)).astimezone(tz).utcoffset() != offset:
            base = utc + timedelta(hours=before)
            lo, hi = 0, round((now - before) * 60)  # minutes after base: old, new offset
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (base + timedelta(minutes=mid)).astimezone(tz).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            since = (base + timedelta(minutes=hi)).astimezone(tz)
            offset = since.utcoffset()
            out.append((since, since.strftime("%Z")))
        before = now
    return out


def zone_label(names: list[tuple[datetime, str]]) -> str:
    """``CET`` or, across a change, ``CET/CEST``: the abbreviations of :func:`zone_names`."""
    return "/".join(dict.fromkeys(name for _, name in names))
