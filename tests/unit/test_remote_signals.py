"""Remote control's signal names: a bad one is a clear error, never a crash of the control thread."""

from __future__ import annotations

import signal

import pytest

from celeriac.worker.remote import _signal_number


def test_signal_names_numbers_and_bad_names() -> None:
    assert _signal_number("SIGTERM") == signal.SIGTERM
    assert _signal_number("kill") == signal.SIGKILL
    assert _signal_number("9") == 9
    with pytest.raises(ValueError, match="unknown signal 'SIGNOPE'"):
        _signal_number("SIGNOPE")
