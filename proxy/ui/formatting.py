"""Small text formatters the templates use as filters (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

NONE = "\N{EN DASH}"  # shown for an absent value


def size(value: int | None) -> str:
    """Bytes for people: 930 B, 12.4 kB, 3.1 MB (powers of 1000, as PyPI shows them)."""
    if value is None:
        return NONE
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    raise AssertionError("unreachable")


def when(value: str | float | None) -> str:
    """A PEP 700 upload time or a unix time as `2024-05-01 12:34 UTC`; unreadable text is shown as it is."""
    if value is None or value == "":
        return NONE
    if isinstance(value, float | int):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def short_hash(value: str | None) -> str:
    return value[:12] + "…" if value else NONE
