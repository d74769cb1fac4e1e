"""The public web form's limits through the gateway: one visitor (key and address, or key and IPv6
/48) cannot use up a key for everyone, a made-up key costs nobody's bucket and is answered as
before, every refused key counts against its address's budget for failed credentials, and behind
an ingress each visitor is counted by their own address."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from google.rpc import code_pb2, status_pb2

from crm_gateway.app import create_app
from crm_gateway.settings import GatewaySettings

pytestmark = pytest.mark.unit

PATH = "/api/v1/public/web-form-submissions"
KEY = "wfk_key-1_secret"
JSON = {"Content-Type": "application/json"}
PER_ADDRESS_BURST = 3
PER_NETWORK_BURST = 5
PER_KEY_BURST = 7


def form(key: str = KEY, phone: str = "050-1234567") -> dict[str, str]:
    return {"key": key, "full_name": "מיכל ברק", "phone_number": phone}


Visitors = Callable[[str], httpx.AsyncClient]


@asynccontextmanager
async def public_gateway(settings: GatewaySettings) -> AsyncIterator[Visitors]:
    """The app, and a factory of token-less clients each connecting from a given TCP address."""
    app: FastAPI = create_app(settings)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))

        def connect(peer: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(peer, 51234))
            return httpx.AsyncClient(transport=transport, base_url="http://gateway")

        yield connect


@pytest.fixture
def limited(backend: Any, settings_for: Callable[..., GatewaySettings]) -> Callable[..., GatewaySettings]:
    """Settings with small buckets (sustained rates too slow to refill during a test)."""

    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "web_form_rate_limit_per_minute": 1,
            "web_form_rate_limit_burst": PER_KEY_BURST,
            "web_form_address_rate_limit_per_minute": 1,
            "web_form_address_rate_limit_burst": PER_ADDRESS_BURST,
            "web_form_network_rate_limit_per_minute": 1,
            "web_form_network_rate_limit_burst": PER_NETWORK_BURST,
            # The anonymous budget too: at its default 60 a minute a slow machine refills a token
            # while 40 guesses are sent (CI saw a 403 where a 429 belonged).
            "anonymous_rate_limit_per_minute": 1,
        }
        return settings_for(backend.address, **{**values, **overrides})

    return make


async def statuses(client: httpx.AsyncClient, count: int, key: str = KEY, **headers: str) -> list[int]:
    return [(await client.post(PATH, data=form(key), headers=headers)).status_code for _ in range(count)]


async def test_a_flood_from_one_address_does_not_stop_another_address_using_the_same_key(limited) -> None:
    async with public_gateway(limited()) as connect:
        flood = await statuses(connect("198.51.100.7"), 20)
        limited_reply = await connect("198.51.100.7").post(PATH, data=form())
        other = await statuses(connect("203.0.113.9"), PER_ADDRESS_BURST)

    assert flood == [202] * PER_ADDRESS_BURST + [429] * (20 - PER_ADDRESS_BURST)
    assert limited_reply.status_code == 429
    assert limited_reply.headers["content-type"] == "application/problem+json"
    assert int(limited_reply.headers["retry-after"]) >= 1
    assert "address" in limited_reply.json()["detail"]
    assert other == [202] * PER_ADDRESS_BURST


async def test_many_addresses_can_still_use_up_a_key_which_then_answers_429_to_all(limited) -> None:
    """The documented trade-off: a botnet empties the key's bucket; the remedy is a new key."""
    async with public_gateway(limited()) as connect:
        spent = [await statuses(connect(f"198.51.100.{n}"), PER_ADDRESS_BURST) for n in range(1, 4)]
        late = await connect("203.0.113.9").post(PATH, data=form())
        new_key = await connect("203.0.113.9").post(PATH, data=form("wfk_key-2_secret"))

    assert sum(s.count(202) for s in spent) == PER_KEY_BURST
    assert late.status_code == 429 and "form key" in late.json()["detail"]
    assert new_key.status_code == 202


async def test_a_made_up_key_costs_no_budget_and_is_refused_as_before(limited, backend) -> None:
    async with public_gateway(limited(anonymous_rate_limit_burst=100)) as connect:
        visitor = connect("198.51.100.7")
        refused = [await visitor.post(PATH, data=form(f"wfk-guess-{n}")) for n in range(40)]
        # The same address, with the real key: its whole burst is still there, and so is the key's.
        own = await statuses(visitor, PER_ADDRESS_BURST)
        others = await statuses(connect("203.0.113.9"), PER_ADDRESS_BURST)

    assert {r.status_code for r in refused} == {403}
    assert refused[0].headers["content-type"] == "application/problem+json"
    assert refused[0].json()["detail"] == "web_form_key is not a valid web-to-lead key"
    assert own == [202] * PER_ADDRESS_BURST
    assert others == [202] * PER_ADDRESS_BURST
    # A real key is verified once, then remembered: not one extra backend call per submission.
    verified = [r.web_form_key for r in backend.recorder.requests("VerifyWebFormKey")]
    assert verified.count(KEY) == 1
    assert len(backend.recorder.requests("CaptureLead")) == 2 * PER_ADDRESS_BURST


async def test_a_flood_of_made_up_keys_from_one_address_stops_reaching_the_backend(limited, backend) -> None:
    """Made-up keys count against the address's budget for requests without a valid credential
    (burst 5 here): past it they are 429 without a backend call; another address is untouched."""
    async with public_gateway(limited(anonymous_rate_limit_burst=5)) as connect:
        visitor = connect("198.51.100.7")
        refused = [(await visitor.post(PATH, data=form(f"wfk-guess-{n}"))).status_code for n in range(40)]
        others = await statuses(connect("203.0.113.9"), PER_ADDRESS_BURST)

    assert refused == [403] * 5 + [429] * 35
    guesses = [r.web_form_key for r in backend.recorder.requests("VerifyWebFormKey") if r.web_form_key != KEY]
    assert len(guesses) == 5
    assert others == [202] * PER_ADDRESS_BURST


async def test_behind_a_trusted_ingress_each_visitor_has_their_own_bucket(limited) -> None:
    async with public_gateway(limited(trusted_proxies=["10.0.0.0/8"])) as connect:
        ingress = connect("10.1.2.3")
        flood = await statuses(ingress, 10, **{"X-Forwarded-For": "198.51.100.7"})
        # Rotating a spoofed leftmost hop does not make the flooding visitor someone else…
        spoofed = [
            (await ingress.post(PATH, data=form(), headers={"X-Forwarded-For": f"1.2.3.{n}, 198.51.100.7"})).status_code
            for n in range(5)
        ]
        # …while another visitor through the same ingress is served.
        other = await statuses(ingress, PER_ADDRESS_BURST, **{"X-Forwarded-For": "203.0.113.9"})

    assert flood.count(202) == PER_ADDRESS_BURST
    assert set(spoofed) == {429}
    assert other == [202] * PER_ADDRESS_BURST


async def test_without_trusted_proxies_a_forwarded_header_changes_nothing(limited) -> None:
    async with public_gateway(limited()) as connect:
        client = connect("198.51.100.7")
        rotated = [
            (await client.post(PATH, data=form(), headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code
            for n in range(10)
        ]

    assert rotated.count(202) == PER_ADDRESS_BURST


async def test_an_ipv6_visitor_is_counted_by_its_64(limited) -> None:
    async with public_gateway(limited()) as connect:
        first = await statuses(connect("2001:db8:1:2::1"), PER_ADDRESS_BURST)
        same_64 = await connect("2001:db8:1:2::ffff").post(PATH, data=form())
        next_64 = await connect("2001:db8:1:3::1").post(PATH, data=form())

    assert first == [202] * PER_ADDRESS_BURST
    assert same_64.status_code == 429
    assert next_64.status_code == 202


async def test_one_holder_of_an_ipv6_48_cannot_empty_the_key_by_rotating_its_64s(limited) -> None:
    """A home or site may be delegated a /48 (65,536 /64s, each a fresh visitor bucket): its /48
    gets no more than the network burst of the key's tokens, and another /48 still submits."""
    async with public_gateway(limited(web_form_rate_limit_burst=60)) as connect:
        rotated = [(await connect(f"2001:db8:aa:{n:x}::1").post(PATH, data=form())) for n in range(300)]
        other_48 = await statuses(connect("2001:db8:bb:1::1"), PER_ADDRESS_BURST)
        ipv4 = await statuses(connect("203.0.113.9"), PER_ADDRESS_BURST)

    codes = [r.status_code for r in rotated]
    assert codes == [202] * PER_NETWORK_BURST + [429] * (300 - PER_NETWORK_BURST)
    assert "network" in rotated[-1].json()["detail"]
    assert int(rotated[-1].headers["retry-after"]) >= 1
    assert other_48 == [202] * PER_ADDRESS_BURST
    assert ipv4 == [202] * PER_ADDRESS_BURST


async def test_an_ipv4_visitor_has_no_network_tier(limited) -> None:
    """Neighbours in one IPv4 /24 (a carrier's NAT pool, a campus) are different people: each
    address keeps its own burst, past what one /48 may take."""
    async with public_gateway(limited()) as connect:
        neighbours = [await statuses(connect(f"198.51.100.{n}"), 1) for n in range(1, PER_NETWORK_BURST + 3)]

    assert neighbours == [[202]] * (PER_NETWORK_BURST + 2)


@pytest.mark.parametrize(
    ("code", "status"), [(code_pb2.INVALID_ARGUMENT, 422), (code_pb2.NOT_FOUND, 404), (code_pb2.PERMISSION_DENIED, 403)]
)
async def test_every_refusal_of_a_key_counts_against_the_address(limited, backend, code: int, status: int) -> None:
    """Not only "permission denied": whatever the leads service refuses a key with is a failed
    credential, so one address cannot send such keys past its budget (burst 5 here)."""
    async with public_gateway(limited(anonymous_rate_limit_burst=5)) as connect:
        visitor = connect("198.51.100.7")
        backend.recorder.fail_with = status_pb2.Status(code=code, message="refused")
        refused = [(await visitor.post(PATH, data=form(f"wfk_guess-{n}_x"))).status_code for n in range(20)]
        backend.recorder.fail_with = None
        others = await statuses(connect("203.0.113.9"), PER_ADDRESS_BURST)

    assert refused == [status] * 5 + [429] * 15
    assert len(backend.recorder.requests("VerifyWebFormKey")) == 5 + 1
    assert others == [202] * PER_ADDRESS_BURST


@pytest.mark.parametrize("key", ["\x00x", "wfk_key-1_secret\x00", "wfk_k\u00e9y_secret", "\ud800", "w" * 201])
async def test_what_cannot_be_a_key_is_refused_without_asking_and_counted(limited, backend, key: str) -> None:
    """A NUL (which the chassis would refuse as INVALID_ARGUMENT), a control or non-ASCII character,
    or an over-long key: 403 as any bad key, no backend call, and counted like one."""
    async with public_gateway(limited(anonymous_rate_limit_burst=5)) as connect:
        visitor = connect("198.51.100.7")
        # As JSON, escaped: a lone surrogate (`"\\ud800"`) reaches the gateway only that way.
        body = json.dumps(form(key))
        replies = [await visitor.post(PATH, content=body, headers=JSON) for _ in range(20)]

    assert [r.status_code for r in replies] == [403] * 5 + [429] * 15
    assert replies[0].headers["content-type"] == "application/problem+json"
    assert replies[0].json()["detail"] == "web_form_key is not a valid web-to-lead key"
    assert backend.recorder.requests("VerifyWebFormKey") == []


async def test_a_failing_leads_service_spends_no_visitors_budget(limited, backend) -> None:
    """503 while the leads service is down is not the visitor's doing: once it is back, the same
    address submits with its whole budget."""
    async with public_gateway(limited(anonymous_rate_limit_burst=5)) as connect:
        visitor = connect("198.51.100.7")
        backend.recorder.fail_with = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="down")
        outage = [(await visitor.post(PATH, data=form())).status_code for _ in range(10)]
        backend.recorder.fail_with = None
        after = await statuses(visitor, PER_ADDRESS_BURST)

    assert outage == [503] * 10
    assert after == [202] * PER_ADDRESS_BURST
