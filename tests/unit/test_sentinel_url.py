"""Redis Sentinel URLs in Celery's form, read as kombu reads them: Sentinels joined by ``;``,
the URL's password and database for the master, the master's name from transport options."""

from __future__ import annotations

import pytest

from celeriac import Celery
from celeriac.brokers.base import redact_url
from celeriac.engines import engine_name
from celeriac.engines.redis.connect import parse_sentinel_url, server_of
from celeriac.exceptions import ConfigurationError


def test_sentinels_are_listed_and_the_password_and_db_are_the_masters() -> None:
    sentinels, master = parse_sentinel_url(
        "sentinel://:s%40cret@10.0.0.1:26380/3;sentinel://10.0.0.2;sentinel://user:pw@h3:26381")
    assert sentinels == [("10.0.0.1", 26380), ("10.0.0.2", 26379), ("h3", 26381)]
    assert master == {"password": "s@cret", "db": 3, "username": "user"}


@pytest.mark.parametrize("url, word", [
    ("sentinel://", "expected sentinel://host:port"),
    ("sentinel://h1:26379;redis://h2:6379", "expected sentinel://host:port"),
    ("sentinel://h1:notaport", "Port"),
    ("sentinel://h1:26379/zero", "not a number"),
])
def test_a_malformed_sentinel_url_is_a_one_line_error_naming_the_part(url: str, word: str) -> None:
    with pytest.raises(ConfigurationError, match=word) as raised:
        parse_sentinel_url(url)
    assert "\n" not in str(raised.value)


def test_sentinel_is_a_mode_of_the_redis_engine() -> None:
    assert engine_name("sentinel://h:26379;sentinel://h2:26379") == "redis"
    # The broker and result store share a round trip only on the same master.
    assert server_of("sentinel://h", {"master_name": "a"}) != server_of("sentinel://h", {"master_name": "b"})


def test_each_part_of_a_sentinel_url_is_redacted() -> None:
    assert redact_url("sentinel://:pw@h1:26379;sentinel://:pw@h2:26379") == \
        "sentinel://:***@h1:26379;sentinel://:***@h2:26379"


@pytest.mark.parametrize("setting, make", [
    ("broker_transport_options", lambda app: app.new_broker()),
    ("result_backend_transport_options", lambda app: app.new_backend()),
])
def test_a_sentinel_url_without_a_master_name_names_the_setting_to_set(setting, make) -> None:
    """No Sentinel needs to run: the name is checked before anything connects."""
    app = Celery("s", broker="sentinel://127.0.0.1:1", backend="sentinel://127.0.0.1:1", set_as_current=False)
    app.conf.update(broker_transport_options={"visibility_timeout": 10})
    with pytest.raises(ConfigurationError, match=f"{setting}=") as raised:
        make(app)
    assert "\n" not in str(raised.value)


def test_results_kept_in_the_brokers_store_use_the_brokers_transport_options() -> None:
    """With no result_backend, results live on the broker's master: its options serve both."""
    app = Celery("s", broker="sentinel://127.0.0.1:1", set_as_current=False)
    app.conf.update(broker_transport_options={"master_name": "m"})
    backend = app.new_backend()
    try:
        assert backend.conns.server == ("sentinel://127.0.0.1:1", "m")  # type: ignore[attr-defined]
    finally:
        backend.close()
    app.conf.update(result_backend="sentinel://127.0.0.1:2")
    with pytest.raises(ConfigurationError, match="result_backend_transport_options="):
        app.new_backend()
