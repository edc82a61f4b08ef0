"""A slot always holds what the supervisor needs to enforce a hard time limit."""

from __future__ import annotations

from celeriac.worker.slots import PAYLOAD, Slots, fit


def _info(args: str, kwargs: str = "{}") -> dict[str, object]:
    return {"id": "a" * 36, "name": "proj.render", "tag": "1-0", "q": "celery", "p": 0, "d": 0,
            "al": False, "rl": False, "started": 1.0, "hard": 2, "args": args, "kwargs": kwargs}


def test_multibyte_arguments_past_the_payload_still_leave_a_readable_slot_with_its_hard_limit() -> None:
    slots = Slots(2)
    shown = repr(("\U0001F600" * 1000,))[:1000]  # what the consumer shows: 1,000 characters, ~4 KB
    slots.begin(1, _info(shown, repr({"k": "\u00e9" * 990})[:1000]), 2.0)
    running = slots.read(1)
    assert running is not None
    assert running.hard_limit == 2.0
    assert running.info["id"] == "a" * 36 and running.info["tag"] == "1-0"
    assert running.info["args"].startswith("('\U0001F600")


def test_fit_keeps_small_payloads_whole_and_cuts_large_ones_to_the_byte_budget() -> None:
    small = _info("(1, 2)")
    assert fit(small) == fit(dict(small))
    for text in ("\U0001F600" * 1500, "\u00e9" * 3000, "x" * 5000, "\x01" * 3000):
        payload = fit(_info(text, text))
        assert len(payload) <= PAYLOAD
        assert b'"id":"' in payload and payload.endswith(b"}")


def test_an_unreadable_payload_still_reports_the_hard_limit() -> None:
    slots = Slots(1)
    slots.begin(0, _info("()"), 3.0)
    # Tear the payload as a buggy writer would: the header's limit must still be honoured.
    from celeriac.worker.slots import HEADER

    slots._map[HEADER.size: HEADER.size + 2] = b"\xff\xff"
    running = slots.read(0)
    assert running is not None and running.hard_limit == 3.0


def test_short_arguments_beside_huge_keyword_arguments_are_kept_whole() -> None:
    payload = fit(_info("(1, 2)", repr({"blob": "\u00e9" * 5000})))
    import msgspec

    info = msgspec.json.decode(payload)
    assert info["args"] == "(1, 2)" and info["kwargs"].endswith("...")


def test_the_last_ended_task_is_kept_until_the_slot_is_used_again() -> None:
    slots = Slots(1)
    assert slots.ended(0) is None
    slots.begin(0, _info("(1,)"), None)
    assert slots.ended(0) is None  # running, not ended
    slots.end(0)
    assert slots.read(0) is None
    ended = slots.ended(0)
    assert ended is not None and ended["tag"] == "1-0" and ended["args"] == "(1,)"
    assert slots.totals() == (1, 0)
    slots.begin(0, {**_info("(2,)"), "tag": "2-0"}, None)
    assert slots.ended(0) is None
    slots.end(0, failed=True)
    assert slots.ended(0)["tag"] == "2-0"  # type: ignore[index]
    assert slots.totals() == (2, 1)
    slots.clear(0)  # the process died: nothing of it is left to ack
    assert slots.ended(0) is None


def test_a_read_waits_out_a_writer_preempted_in_the_middle_of_a_write() -> None:
    import struct
    import threading

    slots = Slots(1)
    slots.begin(0, _info("(1,)"), None)
    seq = struct.unpack_from("<Q", slots._map, 0)[0]
    struct.pack_into("<Q", slots._map, 0, seq + 1)  # a begin() that wrote its odd seq, then lost the CPU
    resumed = threading.Timer(0.005, lambda: struct.pack_into("<Q", slots._map, 0, seq + 2))  # ... and ends it
    resumed.start()
    try:
        running = slots.read(0)
    finally:
        resumed.join()
    assert running is not None and running.info["tag"] == "1-0"


def test_a_slot_cleared_after_its_process_died_mid_write_is_readable_again() -> None:
    import struct

    slots = Slots(1)
    struct.pack_into("<Q", slots._map, 0, 7)  # died between begin()'s two writes: seq left odd
    slots.clear(0)
    slots.begin(0, _info("(1,)"), None)
    running = slots.read(0)
    assert running is not None and running.info["tag"] == "1-0"


def test_the_broker_word_moves_only_when_the_supervisor_says_the_broker_changed_and_is_seen_by_a_child() -> None:
    """Pool processes compare it at each fetch: it must not move by itself, nor with the lease
    word, and a forked child must see the supervisor's bump."""
    import os

    slots = Slots(2)
    assert slots.broker_generation() == 0
    slots.lease_renewed(1e9, lapsed=True)
    assert slots.broker_generation() == 0
    pid = os.fork()
    if pid == 0:  # the child waits for the bump, then exits 0 (1 if it never came)
        import time

        deadline = time.monotonic() + 10
        while slots.broker_generation() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(0 if slots.broker_generation() == 1 else 1)
    slots.broker_changed()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert slots.broker_generation() == 1
