"""Argument checks for coordinator calls: bad input raises ``ValidationError`` before any write.

Kept apart from the engine so that a client (or the Ray actor's facade) can run the same checks
locally before it makes a remote call.
"""

from __future__ import annotations

import math
from typing import Any

from journal.codec import pack_value
from journal.errors import ValidationError
from journal.settings import Settings

_DEFAULTS = Settings()
MAX_NAME_CHARS = 1024


def check_name(value: Any, what: str = "name", *, optional: bool = False) -> None:
    """Names, holders, agents and write ids: non-empty strings without NUL, at most 1024 chars."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_NAME_CHARS:
        raise ValidationError(f"{what} is {len(value)} characters long; the limit is {MAX_NAME_CHARS}")
    if "\0" in value:
        raise ValidationError(f"{what} must not contain NUL characters: {value!r}")


def check_ttl(ttl: Any) -> float:
    """A lease time to live: a positive, finite number of seconds. Returns it as a float."""
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not math.isfinite(ttl) or ttl <= 0:
        raise ValidationError(f"ttl must be a positive, finite number of seconds, got {ttl!r}")
    return float(ttl)


def check_version(version: Any, what: str = "expected_version") -> None:
    """A record version: an int >= 0 (0 means absent)."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValidationError(f"{what} must be an int >= 0 (0 means 'absent'), got {version!r}")


def pack_record_value(value: Any, name: str, limits: Settings = _DEFAULTS) -> bytes:
    """The packed form of a record's value; ``ValidationError`` when msgpack cannot encode it or
    it is larger than ``Settings.max_record_bytes``."""
    data = pack_value(value, what=f"the value of record {name!r}")
    if len(data) > limits.max_record_bytes:
        raise ValidationError(
            f"the value of record {name!r} is {len(data)} bytes packed; the limit is "
            f"{limits.max_record_bytes} (Settings.max_record_bytes)"
        )
    return data
