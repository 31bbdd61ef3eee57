"""The backlog that rides out a Redis outage, driven by a real Redis server that is stopped and restarted:
items wait in order, the oldest go first when it is full, an item Redis refuses for itself is dropped and
counted, and nothing is tried again before the backoff has passed."""

from __future__ import annotations

import pytest
import redis

from pipeline.bus.backlog import Backlog, Retry, transient
from tests.support.redis_process import RedisProcess


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()


def test_items_wait_through_an_outage_and_go_in_order_oldest_dropped_first(server, caplog):
    client, clock = server.client(), Clock()
    backlog: Backlog[str] = Backlog(3, Retry(initial=1.0, max_delay=4.0), clock=clock)

    def publish(item: str) -> None:
        client.rpush("out", item)

    server.stop()
    for item in "abcde":
        backlog.add(item)
        assert not backlog.flush(publish)
    assert list(backlog.items) == ["c", "d", "e"] and backlog.counts["dropped"] == 2 and backlog.down
    assert sum("backlog full" in r.getMessage() for r in caplog.records) == 1  # once per outage

    server.start()
    assert not backlog.flush(publish)  # the backoff has not passed: nothing is tried
    clock.now += 4.0
    assert backlog.flush(publish) and not backlog.down
    assert client.lrange("out", 0, -1) == [b"c", b"d", b"e"]
    assert backlog.counts["published"] == 3 and backlog.unreported_drops == 2


def test_an_item_redis_refuses_for_itself_is_dropped_and_the_rest_go_on(server):
    client = server.client()
    client.set("not-a-list", 1)
    backlog: Backlog[str] = Backlog(10)
    for key in ("out", "not-a-list", "out"):
        backlog.add(key)
    assert backlog.flush(lambda key: client.rpush(key, "x"))  # WRONGTYPE: not an outage
    assert client.llen("out") == 2 and backlog.counts["refused"] == 1


def test_the_backoff_is_bounded_and_outages_are_told_from_other_errors():
    retry = Retry(initial=0.2, max_delay=5.0)
    assert [retry.delay(n) for n in (0, 1, 2, 5, 100)] == [0.2, 0.4, 0.8, 5.0, 5.0]
    assert transient(redis.ConnectionError()) and transient(redis.exceptions.BusyLoadingError())
    assert not transient(redis.ResponseError("WRONGTYPE")) and not transient(ValueError())
