"""What the cache stores, whichever backend holds it: keyed digests for keys, JSON for values.

Keys: allauth names its entries after what they limit (`allauth:rl:...:ip:203.0.113.9`, a
TOTP marker names the user and the code). Both backends store an HMAC of that name instead
(`make_key`, settings.CACHES' KEY_FUNCTION), under a key derived from SECRET_KEY: whoever reads
the table or the Redis database learns no address, user or code, and cannot tell which entry
is whose. A new SECRET_KEY starts every limit afresh (and forgets the markers of codes used in
the last 30 seconds).

Values: JSON, never pickle. Unpickling runs code named by the data, so a cache that stored
pickles would turn a write to the table or to Redis (an SQL injection, a leaked Redis password)
into code execution in every worker. Everything the cache holds is JSON already (allauth's
rate-limit histories are lists of timestamps, its locks `True`, its TOTP markers `"y"`); a
value JSON cannot hold exactly (an object, a tuple, a dict with keys other than strings) is
refused with a TypeError when set, rather than read back as something else.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.crypto import salted_hmac

KEY_SALT = "custodia.cache.key"


def make_key(key: str, key_prefix: str, version: int) -> str:
    """`prefix:version:HMAC(key)`: a fixed-length name that says nothing of what it counts."""
    digest = salted_hmac(KEY_SALT, key.encode("utf-8", "surrogatepass"), algorithm="sha256")
    return f"{key_prefix}:{version}:{digest.hexdigest()}"


def dump_value(value: Any) -> str:
    """The JSON text of `value`; TypeError when JSON cannot hold it exactly."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise TypeError("The cache stores JSON values: NaN and infinities are not.") from None
    if json.loads(text) != value:
        raise TypeError(f"The cache stores JSON values: a {type(value).__name__} would change.")
    return text


class JSONSerializer:
    """Values in Redis as JSON (Django's RedisCache pickles by default; see the docstring).

    Integers are handed to Redis as they are, so that INCR works on them, as Django's own
    serializer does; every JSON integer reads back as the same int.
    """

    def __init__(self, protocol: int | None = None) -> None:
        """Django passes a pickle protocol; JSON has none."""

    def dumps(self, obj: Any) -> bytes | int:
        """An int as is (for INCR), anything else as JSON bytes."""
        if type(obj) is int:
            return obj
        return dump_value(obj).encode()

    def loads(self, data: bytes) -> Any:
        """The value `dumps` stored."""
        return json.loads(data)
