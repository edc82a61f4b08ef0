"""How a Redis URL becomes a redis-py client: one server (``redis://``, ``rediss://``,
``unix://``), the master a set of Sentinels names (``sentinel://``), or a Redis Cluster
(``rediscluster://``).

Cluster: ``rediscluster://[user:password@]host:port,host:port,.../`` (``redisclusters://`` for
TLS) lists seed nodes; the client asks them for the slot map and learns every other node from
it, so two or three seeds survive one being down. A cluster has only database 0. The scheme
follows the name the Redis Cluster Python clients and the kombu patches for Cluster used.

Sentinel follows Celery's (kombu's) form: ``sentinel://[:password@]host:26379[/db]`` parts
joined by ``;``, the master's name in the transport options (``broker_transport_options`` for
the broker, ``result_backend_transport_options`` for the result store). The URL's password,
user and database are the master's; the Sentinels' own credentials go in ``sentinel_kwargs``.
redis-py's ``SentinelConnectionPool`` asks the Sentinels for the master each time it opens a
connection, and a connection to a master that was demoted or died fails and is dropped, so
the next one reaches whichever server the Sentinels promoted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from ...brokers.base import redact_url
from ...exceptions import ConfigurationError

SENTINEL_PORT = 26379


CLUSTER_SCHEMES = ("rediscluster", "redisclusters")
# What a cluster answers while a master fails over or a slot moves (after the clients' own retries).
CLUSTER_UNAVAILABLE = (redis.exceptions.ClusterError, redis.exceptions.RedisClusterException,
                       redis.exceptions.TryAgainError, redis.exceptions.AskError)


def is_cluster(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes' addresses and the connection settings (password, user, TLS)."""
    scheme, _, rest = url.partition("://")
    netloc, _, path = rest.partition("/")
    path, _, _query = path.partition("?")
    creds, at, hosts = netloc.rpartition("@")
    settings: dict[str, Any] = {}
    if at:
        user, colon, password = creds.partition(":")
        if colon:
            settings["password"] = unquote(password)
        if user:
            settings["username"] = unquote(user)
    if scheme.lower() == "redisclusters":
        settings["ssl"] = True
    if path.strip("/") not in ("", "0"):
        raise ConfigurationError(f"Redis Cluster URL {redact_url(url)!r}: a cluster has only database 0")
    seeds: list[tuple[str, int]] = []
    for part in filter(None, (p.strip() for p in hosts.split(","))):
        host, colon, port = part.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ConfigurationError(
                f"Redis Cluster URL {redact_url(url)!r}: seed {part!r} is not host:port "
                "(expected rediscluster://host:port,host:port/)")
        seeds.append((host.strip("[]"), int(port)))
    if not seeds:
        raise ConfigurationError(f"Redis Cluster URL {redact_url(url)!r} names no seed node")
    return seeds, settings


def make_cluster_client(url: str, options: Mapping[str, Any]) -> Any:
    # Imported here: a one-server user's processes never load redis-py's cluster client.
    from redis.backoff import ExponentialBackoff
    from redis.cluster import ClusterNode, RedisCluster
    from redis.retry import Retry

    seeds, settings = parse_cluster_url(url)
    # Failover: a command to a dead master fails over its connection; the client then asks the
    # cluster again for the slot map and retries elsewhere, so allow several attempts.
    # A replica takes over after the cluster's node timeout (seconds): retry for about that long.
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 8)
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in seeds],  # type: ignore[no-untyped-call]
                        retry=retry, **{**options, **settings})


def is_sentinel(url: str) -> bool:
    return url.partition("://")[0].lower() == "sentinel"


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The Sentinels' addresses and the master's connection settings (password, user, db)."""
    sentinels: list[tuple[str, int]] = []
    master: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in url.split(";"))):
        try:
            split = urlsplit(part)
            port = split.port or SENTINEL_PORT
        except ValueError as exc:
            raise ConfigurationError(f"Sentinel URL part {redact_url(part)!r}: {exc}") from None
        if split.scheme.lower() != "sentinel" or not split.hostname:
            raise ConfigurationError(
                f"Sentinel URL part {redact_url(part)!r}: expected sentinel://host:port, parts joined by ';'")
        sentinels.append((split.hostname, port))
        if split.password is not None:
            master.setdefault("password", unquote(split.password))
        if split.username:
            master.setdefault("username", unquote(split.username))
        db = split.path.strip("/")
        if db:
            if not db.isdigit():
                raise ConfigurationError(f"Sentinel URL part {redact_url(part)!r}: database {db!r} is not a number")
            master.setdefault("db", int(db))
    if not sentinels:
        raise ConfigurationError(f"Sentinel URL {redact_url(url)!r} names no Sentinel")
    return sentinels, master


def make_client(url: str, options: Mapping[str, Any], transport_options: Mapping[str, Any] | None,
                setting: str) -> Any:
    """The client for ``url`` (a ``RedisCluster`` for a cluster); ``setting`` names where the
    transport options came from, for the one-line error a missing master name gets."""
    if is_cluster(url):
        return make_cluster_client(url, options)
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    sentinels, master = parse_sentinel_url(url)
    transport = dict(transport_options or {})
    master_name = transport.get("master_name")
    if not isinstance(master_name, str) or not master_name:
        raise ConfigurationError(
            f"{setting} must name the Sentinel master for {redact_url(url)}: {setting}={{'master_name': 'mymaster'}}")
    # A Sentinel that does not answer must not hold discovery for the 120 s a Redis read may take.
    quick = options.get("socket_connect_timeout") or 5.0
    sentinel_kwargs = {"socket_timeout": quick, "socket_connect_timeout": quick,
                       **dict(transport.get("sentinel_kwargs") or {})}
    manager = Sentinel(sentinels, min_other_sentinels=int(transport.get("min_other_sentinels", 0)),
                       sentinel_kwargs=sentinel_kwargs, **{**options, **master})
    client: redis.Redis = manager.master_for(master_name, redis_class=redis.Redis)
    return client


def server_of(url: str, transport_options: Mapping[str, Any] | None) -> tuple[str, str]:
    """What tells two clients apart as servers: the URL and, under Sentinel, the master's name
    (the broker and the result store share a round trip only when they are the same server)."""
    if is_sentinel(url):
        return url, str((transport_options or {}).get("master_name", ""))
    return url, ""
