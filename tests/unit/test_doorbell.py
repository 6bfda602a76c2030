"""Doorbells: what a listener receives when a store rings it."""

from __future__ import annotations

import os

from fastdeploy.store.doorbell import MAX_MESSAGE_BYTES, PLAIN_RING, Doorbells


def test_a_listener_gets_every_message_rung_since_it_last_waited(tmp_path):
    bells = Doorbells(tmp_path)
    bell = bells.listen("results")
    assert bell.wait(0) is None
    bells.ring("results", b"first")
    bells.ring("results")
    bells.ring("work", b"not for this role")
    assert bell.wait(1) == [b"first", PLAIN_RING]
    assert bell.wait(0.01) is None
    bell.close()
    bells.close()


def test_a_message_too_large_for_one_datagram_rings_plainly(tmp_path):
    bells = Doorbells(tmp_path)
    bell = bells.listen("results")
    bells.ring("results", b"x" * MAX_MESSAGE_BYTES)
    bells.ring("results", b"x" * (MAX_MESSAGE_BYTES + 1))
    assert bell.wait(1) == [b"x" * MAX_MESSAGE_BYTES, PLAIN_RING]
    bell.close()
    bells.close()


def test_a_listener_whose_process_died_is_forgotten(tmp_path):
    bells = Doorbells(tmp_path)
    gone = bells.listen("results")
    bells.ring("results")
    gone.close()  # as if its process died: the socket is gone, the registration too
    (tmp_path / "bells" / "results.stale").touch()  # a registration left behind by a killed process
    bells.ring("results")
    assert not (tmp_path / "bells" / "results.stale").exists()
    bells.close()


def test_a_ringer_keeps_no_socket_for_listeners_that_left(tmp_path):
    """A loop lives for days while API workers come and go: no file descriptor per departed worker."""
    bells = Doorbells(tmp_path)
    staying = bells.listen("results")
    bells.ring("results")
    open_before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        leaving = bells.listen("results")
        bells.ring("results")
        leaving.close()  # a restarted API worker unregisters
    bells.ring("results")
    assert len(os.listdir("/proc/self/fd")) <= open_before
    assert set(staying.wait(1)) == {PLAIN_RING}  # the buffer holds only the first few rings: enough to wake
    staying.close()
    bells.close()
