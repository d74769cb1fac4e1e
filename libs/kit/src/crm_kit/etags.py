"""ETags of versioned records (AIP-154): a row's counter, bumped by every change, quoted.

A version counter rather than a hash of the row: cheap, never collides, says nothing of the
content. The gateway passes If-Match through as the request's etag and answers STALE_ETAG as 412.
"""

from __future__ import annotations

from crm_kit.errors import Aborted


def etag(version: int) -> str:
    """The opaque etag of a record at `version`."""
    return f'"{version}"'


def check_etag(given: str, version: int, record: str) -> None:
    """An etag of an older version means the caller decided on what is no longer there: ABORTED
    (reason STALE_ETAG), nothing changed. An empty one is unconditional."""
    if given and given != etag(version):
        raise Aborted(
            f"{record} changed since it was read",
            reason="STALE_ETAG",
            field_violations=[("etag", "is stale: read the record again")],
            metadata={"etag": etag(version)},
        )
