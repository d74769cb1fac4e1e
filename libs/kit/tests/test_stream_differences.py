"""What a service checks of the stream it did not create: its subjects, file storage and replicas."""

from __future__ import annotations

import dataclasses

import pytest
from nats.js.api import StorageType

from crm_kit.bus import stream_config, stream_differences
from crm_kit.settings import ServiceSettings

pytestmark = pytest.mark.unit

SETTINGS = ServiceSettings(service_name="kittest", database_url="postgresql+asyncpg://x@h/d")


def test_the_provisioned_stream_has_no_difference_whatever_its_age_and_window() -> None:
    provisioned = stream_config(SETTINGS)
    assert stream_differences(provisioned, SETTINGS) == []
    longer = dataclasses.replace(provisioned, max_age=90 * 86400, duplicate_window=600)
    assert stream_differences(longer, SETTINGS) == []
    wider = dataclasses.replace(provisioned, subjects=["crm.>", "legacy.>"])
    assert stream_differences(wider, SETTINGS) == []


def test_subjects_storage_and_replicas_that_differ_are_each_named() -> None:
    other = dataclasses.replace(stream_config(SETTINGS), subjects=["crm.leads.>"], storage=StorageType.MEMORY)
    found = stream_differences(dataclasses.replace(other, num_replicas=3), SETTINGS)
    assert [f.split()[0] for f in found] == ["subjects", "storage", "3"]
