"""Signatures and the options object without a worker: argument order, serialisation, `|`."""

from __future__ import annotations

import json
import pickle

import pytest

from celeriac import Celery, Signature, chain, chord, group, message, signature
from celeriac.canvas import chunks, xstarmap
from celeriac.exceptions import ConfigurationError
from celeriac.options import SendOptions


@pytest.fixture
def app() -> Celery:
    app = Celery("sigs", broker="memory://sigs-unit")
    return app


def test_call_time_args_go_before_bound_ones(app: Celery) -> None:
    @app.task
    def sub(x: int, y: int) -> int:
        return x - y

    partial = sub.s(2)
    assert partial._merge((10,), None, None)[0] == (10, 2)
    assert partial.clone((10,)).args == (10, 2)
    assert partial(10) == 8
    assert sub.si(2, 1)._merge((10,), {"z": 1}, None)[:2] == ((2, 1), {})  # immutable ignores them
    assert sub.s(y=1)._merge((5,), {"y": 3}, None)[:2] == ((5,), {"y": 3})  # call-time kwargs win


def test_signature_round_trips_through_json_and_pickle(app: Celery) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    sig = add.s(1, y=2).set(queue="q", countdown=3)
    sig.link(add.s(10))
    restored = signature(json.loads(json.dumps(sig)), app=app)
    assert isinstance(restored, Signature)
    assert restored.as_dict() == sig.as_dict()
    assert restored.task == add.name and restored.args == (1,) and restored.kwargs == {"y": 2}
    assert restored.options["queue"] == "q" and restored.options["link"][0]["args"] == [10]
    assert pickle.loads(pickle.dumps(sig)).as_dict() == sig.as_dict()
    wf = chain(add.s(1, 1), group(add.s(i) for i in range(3)), add.s(5))
    back = signature(message.loads(message.dumps(wf.as_dict())), app=app)
    assert isinstance(back, chain) and [t.task for t in back.tasks] == [add.name, "celery.group", add.name]
    assert isinstance(back.tasks[1], group) and len(back.tasks[1].tasks) == 3


def test_or_composes_chains_and_upgrades_group_then_task_to_chord(app: Celery) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def tsum(xs: list[int]) -> int:
        return sum(xs)

    c = add.s(1, 1) | add.s(2) | add.s(3)
    assert isinstance(c, chain) and len(c.tasks) == 3  # flattened, not nested
    c2 = c | (add.s(4) | add.s(5))
    assert len(c2.tasks) == 5
    upgraded = group(add.s(i, i) for i in range(3)) | tsum.s()
    assert isinstance(upgraded, chord) and upgraded.body is not None and upgraded.body.task == tsum.name
    steps = chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s()).steps()
    assert [type(s).__name__ for s in steps] == ["Signature", "chord"]


def test_app_signature_names_a_task_this_process_need_not_have(app: Celery) -> None:
    sig = app.signature("elsewhere.add", args=(2, 2), countdown=10)
    assert (sig.task, sig.args, sig.options) == ("elsewhere.add", (2, 2), {"countdown": 10})
    assert sig.app is app


def test_chunks_split_into_starmaps(app: Celery) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    g = add.chunks([(i, i) for i in range(5)], 2).group()
    assert [len(t["kwargs"]["it"]) for t in g.tasks] == [2, 2, 1]
    assert all(isinstance(t, xstarmap) for t in g.tasks)
    with pytest.raises(ValueError, match="chunk size"):
        chunks(add.s(), [(1, 2)], 0)


def test_send_options_is_one_frozen_object_with_clear_errors() -> None:
    opts = SendOptions.of("t", {"countdown": 5, "queue": "q", "exchange": "ignored", "link": {"task": "x"}})
    assert opts.countdown == 5 and opts.queue == "q" and opts.link == ({"task": "x"},)
    with pytest.raises(AttributeError):
        opts.countdown = 1  # type: ignore[misc]
    assert opts.merged("t", {"queue": "r"}).queue == "r" and opts.queue == "q"
    with pytest.raises(ConfigurationError, match="unknown option 'cuontdown'"):
        SendOptions.of("t", {"cuontdown": 5})


def test_plain_envelopes_carry_no_flow(app: Celery) -> None:
    """A task with nothing after it encodes exactly as before canvas: no flow field."""
    from celeriac import publish

    envelope, _ = publish.build_envelope(app, "t", (1,), {}, SendOptions())
    assert b"flow" not in message.encode(envelope)
    linked, _ = publish.build_envelope(app, "t", (1,), {}, SendOptions.of("t", {"link": Signature("u", (2,))}))
    decoded = message.decode(message.encode(linked))
    assert decoded.flow is not None and decoded.flow.link[0]["task"] == "u"
