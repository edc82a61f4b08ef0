"""app.send_many on every broker: one round trip, the same messages send_task makes, all or nothing."""

from __future__ import annotations

import pytest

from celeriac import Celery, message
from celeriac.exceptions import EncodeError


@pytest.fixture
def app(broker_url: str, url_options: dict):
    app = Celery("many", broker=broker_url, backend=broker_url if not broker_url.startswith("memory") else None)
    # Under Sentinel the master's name comes from the settings, as a user's app gets it.
    options = url_options.get("transport_options")
    app.conf.update(broker_transport_options=options, result_backend_transport_options=options)

    @app.task(name="many.add", queue="sums", priority=7)
    def add(x, y=0):
        return x + y

    yield app
    app.close()


def test_each_call_becomes_one_message_with_its_own_id_and_arguments(app) -> None:
    results = app.send_many("many.add", [((i,), {"y": i}) for i in range(250)] + [((), {})])
    assert len({r.id for r in results}) == 251
    got = app.broker.fetch(["sums"], "w/1", 300, 0)
    assert len(got) == 251 and {d.priority for d in got} == {7}
    envelopes = [message.decode(d.body) for d in got]
    assert [e.id for e in envelopes] == [r.id for r in results]
    assert [(e.args, e.kwargs) for e in envelopes] == [([i], {"y": i}) for i in range(250)] + [([], {})]
    one = app.send_task("many.add", args=[1])
    reference = message.decode(app.broker.fetch(["sums"], "w/1", 1, 0)[0].body)
    for field in ("task", "queue", "priority", "ignore_result", "origin", "eta", "expires", "headers"):
        assert getattr(envelopes[0], field) == getattr(reference, field), field
    assert one.id == reference.id
    app.broker.ack(got)


def test_a_bad_argument_anywhere_sends_nothing(app) -> None:
    calls = [((i,), {}) for i in range(100)] + [((object(),), {})]
    with pytest.raises(EncodeError, match=r"args\[0\] \(object\)"):
        app.send_many("many.add", calls)
    assert app.broker.stats(["sums"])[0].ready_total == 0


def test_countdown_and_options_apply_to_every_call(app) -> None:
    app.send_many("many.add", [((1,), {}), ((2,), {})], countdown=3600, queue="later", priority=2)
    stats = app.broker.stats(["later"])[0]
    assert stats.delayed == 2 and stats.ready_total == 0
