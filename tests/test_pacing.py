"""The Pacer: posts per destination spaced on the store's shared budget, backlogs folded
into digests whose every post also spends a slot, long waits handed back to the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from router.channels.base import DeliveryError, PaceSettings, SlotGate, paced
from router.model import Event, Notification, RouteSettings, Status
from router.notify.pacing import MAX_PARK, MemoryBudget, Pacer
from router.render.message import MAX_DIGEST_LISTED, Message, build_message
from router.runtime import Runtime
from router.store.protocols import ChannelBudget
from router.store.redis import RedisStore
from router.store.sqlite import SQLiteStore
from tests.helpers import config_from

ROUTE = RouteSettings(receiver="r", path="route", repeat_interval=3600.0, send_resolved=True)


def message(fp: str, alerts: int = 1) -> Message:
    events = [
        Event(
            source="alertmanager",
            fingerprint=f"{fp}-{i}",
            group_key=f"g-{fp}",
            status=Status.FIRING,
            labels={"alertname": "HighLatency", "instance": f"{fp}-{i}"},
            annotations={"summary": f"slow {fp}-{i}"},
        )
        for i in range(alerts)
    ]
    note = Notification(
        id=f"n-{fp}", route=ROUTE, group_key=f"g-{fp}", events=events, created_at=datetime.now(UTC)
    )
    return build_message(note, "first")


class Recorder:
    """A paced channel that records when each post reached it, on a shared timeline."""

    integration = "slack"
    destination = "in #test"

    def __init__(
        self,
        posts: list[tuple[float, str]],
        *,
        interval: float,
        threshold: int = 100,
        key: str = "chan",
        thread_posts: int = 0,
    ) -> None:
        self.posts = posts
        self.pace = PaceSettings(interval, threshold)
        self.pace_key = key
        self.thread_posts = thread_posts
        self.digests: list[Message] = []
        self.failure: DeliveryError | None = None
        self.release_digest: asyncio.Event | None = None

    async def send(self, message: Message, prior: Mapping[str, str]) -> Mapping[str, str]:
        self.posts.append((time.monotonic(), message.notification_id))
        if self.failure is not None:
            raise self.failure
        return {"sent": message.notification_id}

    async def send_digest(self, digest: Message, slots: SlotGate) -> Mapping[str, str]:
        self.digests.append(digest)
        if self.release_digest is not None:
            await self.release_digest.wait()
        for part in range(1 + self.thread_posts):
            await slots.next()
            self.posts.append((time.monotonic(), f"{digest.notification_id}/{part}"))
        return {}

    async def close(self) -> None:
        return None


def gaps(posts: Sequence[tuple[float, str]]) -> list[float]:
    times = sorted(at for at, _ in posts)
    return [b - a for a, b in zip(times, times[1:], strict=False)]


@pytest.fixture
async def sqlite_budget(tmp_path: Path) -> AsyncIterator[ChannelBudget]:
    store = SQLiteStore(str(tmp_path / "state.db"))
    await store.open()
    yield store
    await store.close()


async def test_posts_to_one_destination_are_an_interval_apart(
    sqlite_budget: ChannelBudget,
) -> None:
    posts: list[tuple[float, str]] = []
    channel = Recorder(posts, interval=0.2)
    pacer = Pacer(sqlite_budget)
    sent = await asyncio.gather(*(pacer.send(channel, message(f"a{i}"), {}) for i in range(4)))
    await pacer.close()
    assert [s.state["sent"] for s in sent] == [f"n-a{i}" for i in range(4)]
    assert len(posts) == 4
    assert all(gap >= 0.2 * 0.9 for gap in gaps(posts))


async def test_other_destinations_are_not_held_back(sqlite_budget: ChannelBudget) -> None:
    posts: list[tuple[float, str]] = []
    slow = Recorder(posts, interval=30.0, key="slow")
    fast = Recorder(posts, interval=0.0, key="fast")
    pacer = Pacer(sqlite_budget)
    await pacer.send(slow, message("s1"), {})
    # The slow destination's next slot is half a minute away; the fast one posts at once.
    waiting = asyncio.ensure_future(pacer.send(slow, message("s2"), {}))
    async with asyncio.timeout(5):
        await asyncio.gather(*(pacer.send(fast, message(f"f{i}"), {}) for i in range(3)))
    assert [n for _, n in posts] == ["n-s1", "n-f0", "n-f1", "n-f2"]
    waiting.cancel()
    await pacer.close()


async def test_a_backlog_becomes_one_digest_of_every_waiting_notification(
    sqlite_budget: ChannelBudget,
) -> None:
    posts: list[tuple[float, str]] = []
    channel = Recorder(posts, interval=0.2, threshold=5, thread_posts=2)
    pacer = Pacer(sqlite_budget)
    sent = await asyncio.gather(*(pacer.send(channel, message(f"a{i}"), {}) for i in range(12)))
    await pacer.close()
    digested = [s for s in sent if s.digest_id]
    assert len(digested) >= 5
    [digest] = channel.digests
    assert {a.fingerprint for a in digest.alerts} == {
        f"a{i}-0" for i in range(12) if sent[i].digest_id
    }
    assert {s.digest_id for s in digested} == {digest.notification_id}
    # The digest and its two thread posts each took a slot like any post.
    assert len(posts) == len(sent) - len(digested) + 3
    assert all(gap >= 0.2 * 0.9 for gap in gaps(posts))


async def test_a_digest_holds_no_more_alerts_than_it_can_list(
    sqlite_budget: ChannelBudget,
) -> None:
    posts: list[tuple[float, str]] = []
    channel = Recorder(posts, interval=0.01, threshold=2)
    gate = asyncio.Event()
    channel.release_digest = gate
    pacer = Pacer(sqlite_budget)
    # One send alone, then a backlog of 2,000 alerts in 40 notifications: at most
    # MAX_DIGEST_LISTED alerts per digest, so each can name all of them.
    first = asyncio.ensure_future(pacer.send(channel, message("first"), {}))
    await first
    sends = [
        asyncio.ensure_future(pacer.send(channel, message(f"b{i}", 50), {})) for i in range(40)
    ]
    gate.set()
    sent = await asyncio.gather(*sends)
    await pacer.close()
    assert all(s.digest_id for s in sent)
    assert all(len(d.alerts) <= MAX_DIGEST_LISTED for d in channel.digests)
    assert sum(len(d.alerts) for d in channel.digests) == 2000


async def test_sends_folded_into_a_digest_count_as_parked_while_it_is_posted(
    sqlite_budget: ChannelBudget,
) -> None:
    posts: list[tuple[float, str]] = []
    channel = Recorder(posts, interval=0.0, threshold=3)
    gate = asyncio.Event()
    channel.release_digest = gate
    pacer = Pacer(sqlite_budget)
    sends = [asyncio.ensure_future(pacer.send(channel, message(f"a{i}"), {})) for i in range(5)]
    async with asyncio.timeout(5):
        while not channel.digests:  # noqa: ASYNC110 - the fake channel has no event for it
            await asyncio.sleep(0.01)
    # The worker pool must not count them as busy workers: a digest's thread takes slots.
    assert pacer.parked == 5
    gate.set()
    await asyncio.gather(*sends)
    assert pacer.parked == 0
    await pacer.close()


async def test_long_retry_after_hands_waiting_sends_back_to_the_store(
    sqlite_budget: ChannelBudget,
) -> None:
    posts: list[tuple[float, str]] = []
    channel = Recorder(posts, interval=1.0)
    channel.failure = DeliveryError("rate_limited", retryable=True, retry_after=600)
    # A clock that stands still: the hold each send is told about is exactly Retry-After.
    pacer = Pacer(sqlite_budget, clock=lambda: 1000.0)
    results = await asyncio.gather(
        *(pacer.send(channel, message(f"a{i}"), {}) for i in range(3)), return_exceptions=True
    )
    await pacer.close()
    assert all(isinstance(r, DeliveryError) and r.retry_after for r in results)
    # Nobody was left waiting 600 s in memory: the first send was refused and the two
    # behind it were handed back with the whole hold, not sent after it.
    assert [r.retry_after for r in results if isinstance(r, DeliveryError)] == [600, 600, 600]
    assert len(posts) == 1
    # Handing back took no slot: the first one after the hold is still free.
    assert await sqlite_budget.reserve_slot("chan", 1.0, 1000.0) == pytest.approx(1600.0)


async def test_a_pacer_without_a_store_keeps_its_own_budget() -> None:
    budget = MemoryBudget()
    assert await budget.reserve_slot("k", 2.0, 10.0) == 10.0
    assert await budget.reserve_slot("k", 2.0, 10.0) == 12.0
    await budget.hold_slots("k", 50.0)
    assert await budget.reserve_slot("k", 2.0, 11.0) == 50.0
    # A zero interval reads the next slot without taking it.
    assert await budget.reserve_slot("k", 0.0, 11.0) == 52.0
    assert await budget.reserve_slot("k", 0.0, 11.0) == 52.0
    assert MAX_PARK < 600


# -- replicas on one Redis -----------------------------------------------------------------


@pytest.fixture
async def redis_budgets(redis_url: str, prefix: str) -> AsyncIterator[list[RedisStore]]:
    """Three handles on one Redis prefix: three replicas' stores."""
    stores = [RedisStore(redis_url, key_prefix=prefix) for _ in range(3)]
    for store in stores:
        await store.open()
    yield stores
    for store in stores:
        await store.close()


@pytest.fixture(params=["sqlite", "redis"])
async def any_budget(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ChannelBudget]:
    """The budget of either store (Redis under this test's own prefix)."""
    store: SQLiteStore | RedisStore
    if request.param == "sqlite":
        store = SQLiteStore(str(tmp_path / "state.db"))
    else:
        redis_url: str = request.getfixturevalue("redis_url")
        store = RedisStore(redis_url, key_prefix=request.getfixturevalue("prefix"))
    await store.open()
    yield store
    await store.close()


async def test_a_zero_interval_reads_the_next_slot_without_taking_it(
    any_budget: ChannelBudget,
) -> None:
    """What `until_free` relies on, on both stores."""
    budget = any_budget
    t0 = 1_800_000_000.0
    assert await budget.reserve_slot("k", 1.0, t0) == pytest.approx(t0)
    assert await budget.reserve_slot("k", 0.0, t0) == pytest.approx(t0 + 1)
    assert await budget.reserve_slot("k", 0.0, t0) == pytest.approx(t0 + 1)
    assert await budget.reserve_slot("k", 1.0, t0) == pytest.approx(t0 + 1)
    assert await budget.reserve_slot("k", 0.0, t0 + 5) == pytest.approx(t0 + 5)


async def test_replicas_on_one_redis_share_one_budget_per_destination(
    redis_budgets: list[RedisStore],
) -> None:
    posts: list[tuple[float, str]] = []
    pacers = [Pacer(store) for store in redis_budgets]
    channels = [Recorder(posts, interval=0.25) for _ in pacers]
    await asyncio.gather(
        *(
            pacer.send(channel, message(f"r{r}-{i}"), {})
            for r, (pacer, channel) in enumerate(zip(pacers, channels, strict=True))
            for i in range(3)
        )
    )
    for pacer in pacers:
        await pacer.close()
    assert len(posts) == 9
    # However many replicas post, one destination sees them an interval apart.
    assert all(gap >= 0.25 * 0.9 for gap in gaps(posts))


async def test_a_retry_after_seen_by_one_replica_holds_the_others(
    redis_budgets: list[RedisStore],
) -> None:
    posts: list[tuple[float, str]] = []
    first, second = Pacer(redis_budgets[0]), Pacer(redis_budgets[1])
    limited = Recorder(posts, interval=0.1)
    limited.failure = DeliveryError("rate_limited", retryable=True, retry_after=1.0)
    with pytest.raises(DeliveryError):
        await first.send(limited, message("a"), {})
    refused_at = posts[0][0]
    await second.send(Recorder(posts, interval=0.1), message("b"), {})
    await first.close()
    await second.close()
    assert posts[1][0] - refused_at >= 1.0 * 0.9


# -- settings ------------------------------------------------------------------------------


async def test_channels_are_paced_as_the_config_says_and_rebuilt_when_that_changes(
    pool: aiohttp.ClientSession,
) -> None:
    text = """
server: {{external_url: 'https://alerts.example.com/'}}
slack: {{per_channel_interval: {slack}, digest_threshold: 7}}
email: {{pacing: {{interval: 30s}}}}
receivers:
  - name: chat
    slack: {{token: xoxb-1, channel: '#ops'}}
  - name: mail
    email: {{to: [sre@example.com], from: r@example.com, smarthost: 'mx:25'}}
  - name: hook
    webhook: {{url: 'http://sink/x'}}
route: {{receiver: chat}}
"""
    first = Runtime.build(config_from(text.format(slack="2s")), http=pool)
    chat, mail, hook = (paced(first.channels[n]) for n in ("chat", "mail", "hook"))
    assert chat is not None and mail is not None and hook is None
    assert chat.pace == PaceSettings(2.0, 7, "https://alerts.example.com")
    assert mail.pace == PaceSettings(30.0, 5, "https://alerts.example.com")
    same = Runtime.build(config_from(text.format(slack="2s")), first)
    assert same.channels["chat"] is first.channels["chat"]
    changed = Runtime.build(config_from(text.format(slack="500ms")), first)
    assert changed.channels["chat"] is not first.channels["chat"]
    rebuilt = paced(changed.channels["chat"])
    assert rebuilt is not None and rebuilt.pace.interval == 0.5
    assert changed.channels["mail"] is first.channels["mail"]
