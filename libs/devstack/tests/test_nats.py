from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from crm_devstack._util import free_port
from crm_devstack.nats import EmbeddedNats


@pytest.fixture
def store_base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="crm-devstack-nats-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.integration
async def test_jetstream_publish_consume_and_persist(store_base: Path) -> None:
    server = EmbeddedNats(store_base / "store", free_port())
    try:
        server.start()
        assert server.url == f"nats://127.0.0.1:{server.port}"

        nc = await nats.connect(server.admin_url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="CRM", subjects=["crm.>"]))
        ack = await js.publish("crm.leads.lead_captured", "ליד חדש".encode(), headers={"Nats-Msg-Id": "event-1"})
        duplicate = await js.publish("crm.leads.lead_captured", "ליד חדש".encode(), headers={"Nats-Msg-Id": "event-1"})
        assert ack.seq == 1
        assert duplicate.duplicate

        subscription = await js.pull_subscribe("crm.leads.>", durable="orders")
        messages = await subscription.fetch(1, timeout=5)
        assert [m.data.decode() for m in messages] == ["ליד חדש"]
        assert messages[0].headers is not None and messages[0].headers["Nats-Msg-Id"] == "event-1"
        await messages[0].ack()
        await nc.close()

        server.restart()  # file storage: the stream survives a restart
        nc = await nats.connect(server.admin_url)
        info = await nc.jetstream().stream_info("CRM")
        assert info.state.messages == 1
        await nc.close()

        server.kill()
        server.start()  # and a crash
        nc = await nats.connect(server.admin_url)
        assert (await nc.jetstream().stream_info("CRM")).state.messages == 1
        await nc.close()
    finally:
        server.stop()
    assert not server.running
