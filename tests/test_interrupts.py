"""Ctrl-C and SIGTERM while a command starts: held, then delivered where stopping is orderly."""

from __future__ import annotations

import os
import signal

import pytest

from fakescope_cli import interrupts


@pytest.fixture()
def installed(monkeypatch: pytest.MonkeyPatch):
    """interrupts.install() as `python -m fakescope_cli` runs it, undone afterwards for pytest."""
    previous = {sig: signal.getsignal(sig) for sig in interrupts.STOP_SIGNALS}
    for name, value in (("_installed", False), ("_active", False), ("_raising", False), ("_held", None)):
        monkeypatch.setattr(interrupts, name, value)
    interrupts.install()
    yield
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def test_a_signal_during_start_up_is_held_and_raised_where_the_command_can_stop(installed):
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in the main thread: nothing raised
    assert interrupts._held == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt), interrupts.interruptible():
        pytest.fail("the held signal must stop the command before the block runs")
    assert interrupts._held is None


def test_a_second_signal_while_one_is_held_stops_at_once(installed):
    os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)


def test_other_commands_stop_as_they_start(installed):
    os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        interrupts.stop_holding()
    with pytest.raises(KeyboardInterrupt):  # from now on at once
        os.kill(os.getpid(), signal.SIGTERM)


def test_without_install_the_block_takes_sigterm_and_gives_it_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), interrupts.interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_scan_in_process_holds_a_signal_until_its_output_has_begun():
    """run_scan called as a library: held() puts the handler in place for the scan and takes it back."""
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.held():
        os.kill(os.getpid(), signal.SIGTERM)  # while walking the inputs, loading the detector
        with pytest.raises(KeyboardInterrupt):
            interrupts.stop_holding()  # the output has begun: the scan stops here, in order
    assert signal.getsignal(signal.SIGTERM) is before and interrupts._held is None
