"""``broker_transport_options`` wait_replicas / wait_timeout: bad values get a one-line error
naming the key; unset or 0 means no waiting."""

from __future__ import annotations

from typing import Any

import pytest

from celeriac.engines.redis.durable import Durability
from celeriac.exceptions import ConfigurationError, NotReplicated


def test_unset_or_zero_means_enqueues_do_not_wait() -> None:
    assert Durability.from_options(None, 120.0) is None
    assert Durability.from_options({"master_name": "m"}, 120.0) is None
    assert Durability.from_options({"wait_replicas": 0, "wait_timeout": 5}, 120.0) is None


def test_wait_replicas_becomes_one_wait_command_in_milliseconds() -> None:
    durability = Durability.from_options({"wait_replicas": 2, "wait_timeout": 0.25}, 120.0)
    assert durability is not None and durability.wait == ("WAIT", 2, 250)
    assert Durability.from_options({"wait_replicas": 1}, 120.0).wait == ("WAIT", 1, 1000)  # type: ignore[union-attr]


@pytest.mark.parametrize(("options", "named"), [
    ({"wait_replicas": -1}, "wait_replicas"),
    ({"wait_replicas": "1"}, "wait_replicas"),
    ({"wait_replicas": True}, "wait_replicas"),
    ({"wait_replicas": 1, "wait_timeout": 0}, "wait_timeout"),  # WAIT 0 would block forever
    ({"wait_replicas": 1, "wait_timeout": "1s"}, "wait_timeout"),
    ({"wait_replicas": 1, "wait_timeout": 200}, "redis_socket_timeout"),
])
def test_bad_values_are_refused_naming_the_key(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Durability.from_options(options, 120.0)


def test_too_few_acks_raise_not_replicated_saying_the_task_may_be_lost() -> None:
    durability = Durability(1, 1.0)
    durability.check(1, "redis://:secret@h:6379/0", 1)
    with pytest.raises(NotReplicated, match=r"0 of the 1 .* within 1 s.*fails over.*lost") as info:
        durability.check(0, "redis://:secret@h:6379/0", 1)
    assert "secret" not in str(info.value)
