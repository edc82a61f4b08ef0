"""Redis Cluster URLs: ``rediscluster://`` seed nodes joined by commas, read by connect.py,
and queue-shard settings read by shards.py."""

from __future__ import annotations

import pytest

from celeriac.engines import engine_name
from celeriac.engines.redis.connect import parse_cluster_url, server_of
from celeriac.engines.redis.shards import decode_tag, encode_tag, parse_queue_shards, shard_names, slot_of
from celeriac.exceptions import ConfigurationError


def test_seeds_are_listed_with_the_credentials_and_tls() -> None:
    seeds, settings = parse_cluster_url("redisclusters://user:p%40ss@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002/")
    assert seeds == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]
    assert settings == {"username": "user", "password": "p@ss", "ssl": True}
    assert parse_cluster_url("rediscluster://h:7000/0") == ([("h", 7000)], {})


@pytest.mark.parametrize("url, word", [
    ("rediscluster://", "names no seed"),
    ("rediscluster://h1", "is not host:port"),
    ("rediscluster://h1:7000,h2:x", "is not host:port"),
    ("rediscluster://h1:7000/3", "only database 0"),
])
def test_a_malformed_cluster_url_is_a_one_line_error(url: str, word: str) -> None:
    with pytest.raises(ConfigurationError, match=word) as raised:
        parse_cluster_url(url)
    assert "\n" not in str(raised.value)


def test_cluster_is_a_mode_of_the_redis_engine() -> None:
    assert engine_name("rediscluster://h:7000,h2:7000/") == "redis"
    assert engine_name("redisclusters://h:7000/") == "redis"
    assert server_of("rediscluster://h:7000", None) == server_of("rediscluster://h:7000", None)


def test_shards_fall_in_distinct_slot_ranges_and_shard_zero_is_the_queue() -> None:
    for count in (2, 3, 5):
        names = shard_names("images", count)
        assert names[0] == "images" and len(set(names)) == count
        assert len({slot_of(n) * count // 16384 for n in names}) == count
    assert shard_names("images", 1) == ["images"]


def test_shard_settings_are_checked() -> None:
    assert parse_queue_shards({"queue_shards": {"a": 3}}) == {"a": 3}
    assert parse_queue_shards(None) == {}
    with pytest.raises(ConfigurationError, match=r"queue_shards'\]\['a'\] must be a whole number"):
        parse_queue_shards({"queue_shards": {"a": 0}})
    with pytest.raises(ConfigurationError, match="must map queue names"):
        parse_queue_shards({"queue_shards": ["a"]})


def test_a_shard_travels_in_the_delivery_tag() -> None:
    assert decode_tag(encode_tag(2, "1-0")) == (2, "1-0")
    assert encode_tag(0, "1-0") == "1-0" and decode_tag("1-0") == (0, "1-0")
