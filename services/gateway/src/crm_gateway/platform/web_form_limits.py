"""Rate limits of the public web-to-lead endpoint: per visitor (key and client address), per
network (key and IPv6 /48), then per key.

The key is public (it is in the site's HTML), so the limits must keep one visitor from blocking the
form for everyone, and must not let made-up keys touch anyone's bucket:

- Only a key the leads service knows is counted. A key is verified once (VerifyWebFormKey) and
  remembered for `KNOWN_KEY_SECONDS`; a made-up one is refused exactly as capture refuses it and
  fills no bucket, so a flood of random keys cannot evict real buckets from the bounded store or
  spend an address's budget.
- The visitor's bucket (key, client address; an IPv6 /64 is one address) is taken first and is
  much smaller than the key's, so one address spends at most its own burst of the key's tokens.
- For IPv6, the network's bucket (key, /48) comes next: one home or site is delegated up to a /48
  (65,536 /64s), each a fresh visitor bucket, so without it one holder could empty the key alone.
  Its burst is a few visitors' and well below the key's. IPv4 has no such tier (see
  `client_address.network_bucket`).
- A request refused by one bucket takes no token from the buckets after it.

What is left, by design: many networks (a botnet) can still empty a key's bucket, and then the form
answers 429 to everyone until it refills. The remedy is the operator's: revoke the key and publish a
new one (the bot holds only the old), or raise the per-key limit for a campaign. Buckets are per
gateway replica, like every limit here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from crm_gateway.platform.client_address import IPAddress, address_bucket, network_bucket
from crm_gateway.platform.ratelimit import RateLimiter

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
    """The three buckets of a verified key's submissions, in the order they are taken."""

    def __init__(self, per_key: RateLimiter, per_address: RateLimiter, per_network: RateLimiter) -> None:
        self.per_key = per_key
        self.per_address = per_address
        self.per_network = per_network
        self.known_keys = KnownKeys()

    def take(self, key_id: str, address: IPAddress | None, now: float | None = None) -> tuple[float, str]:
        """A token from the visitor's bucket, then from its network's (IPv6), then from the key's:
        (0.0, "") when allowed, else the seconds to wait and which limit refused ("address",
        "network" or "form key")."""
        wait = self.per_address.check(f"{key_id}|{address_bucket(address)}", now)
        if wait > 0:
            return wait, "address"
        network = network_bucket(address)
        if network is not None:
            wait = self.per_network.check(f"{key_id}|{network}", now)
            if wait > 0:
                return wait, "network"
        wait = self.per_key.check(key_id, now)
        if wait > 0:
            return wait, "form key"
        return 0.0, ""
