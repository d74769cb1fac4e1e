"""ETags of versioned records: one rule for every service (sales' deals, pipelines, products,
quotes; leads' teams and reps)."""

from __future__ import annotations

import pytest

from crm_kit.errors import Aborted
from crm_kit.etags import check_etag, etag

pytestmark = pytest.mark.unit


def test_an_empty_or_current_etag_passes_and_a_stale_one_is_aborted_naming_the_current() -> None:
    check_etag("", 7, "rep r")
    check_etag(etag(7), 7, "rep r")
    with pytest.raises(Aborted) as stale:
        check_etag('"6"', 7, "rep r")
    assert stale.value.reason == "STALE_ETAG"
    assert stale.value.metadata == {"etag": '"7"'}
    assert [f for f, _ in stale.value.field_violations] == ["etag"]
    assert str(stale.value) == "rep r changed since it was read"
