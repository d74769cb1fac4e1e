"""Rate limits of the public web-to-lead endpoint: per visitor (key and client address), then per key.

The key is public (it is in the site's HTML), so the limits must keep one visitor from blocking the
form for everyone, and must not let made-up keys touch anyone's bucket:

- Only a key the leads service knows is counted. A key is verified once (VerifyWebFormKey) and
  remembered for `KNOWN_KEY_SECONDS`; a made-up one is refused exactly as capture refuses it and
  fills no bucket, so a flood of random keys cannot evict real buckets from the bounded store or
  spend an address's budget.
- The visitor's bucket (key, client address; an IPv6 /64 is one address) is checked first and is
  much smaller than the key's, so one address spends at most its own burst of the key's tokens; a
  refused request takes no token from the key.

What is left, by design: many addresses (a botnet, or one holder of many IPv6 /64s) can still empty
a key's bucket, and then the form answers 429 to everyone until it refills. The remedy is the
operator's: revoke the key and publish a new one (the bot holds only the old), or raise the per-key
limit for a campaign. Buckets are per gateway replica, like every limit here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from crm_gateway.ratelimit import RateLimiter

# How long a verified key counts as known without asking again. Revocation does not wait for it:
# capture re-checks the key in its own transaction; this only decides whose buckets are counted.
KNOWN_KEY_SECONDS = 60.0
MAX_KNOWN_KEYS = 10_000


def key_digest(secret: str) -> str:
    """What the gateway remembers of a key's secret (never the secret itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class KnownKeys:
    """Digests of secrets the leads service verified recently → their key ids. Only real keys get
    in, so its size is bounded by the keys that exist (and by `max_keys`, oldest out)."""

    def __init__(self, ttl_seconds: float = KNOWN_KEY_SECONDS, max_keys: int = MAX_KNOWN_KEYS) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_keys = max_keys
        self._keys: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            found = self._keys.get(digest)
            if found is None or now - found[1] >= self.ttl_seconds:
                return None
            return found[0]

    def add(self, digest: str, key_id: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._keys.pop(digest, None)
            self._keys[digest] = (key_id, now)
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)


class WebFormLimits:
    """The two buckets of a verified key's submissions, in the order they are taken."""

    def __init__(self, per_key: RateLimiter, per_address: RateLimiter) -> None:
        self.per_key = per_key
        self.per_address = per_address
        self.known_keys = KnownKeys()

    def take(self, key_id: str, address: str, now: float | None = None) -> tuple[float, str]:
        """A token from the visitor's bucket, then from the key's: (0.0, "") when allowed, else the
        seconds to wait and which limit refused ("address" or "form key")."""
        wait = self.per_address.check(f"{key_id}|{address}", now)
        if wait > 0:
            return wait, "address"
        wait = self.per_key.check(key_id, now)
        if wait > 0:
            return wait, "form key"
        return 0.0, ""
