"""Doorbells: what a listener receives when a store rings it."""

from __future__ import annotations

import os

from fastdeploy.store.codec import pack
from fastdeploy.store.doorbell import Doorbells
from fastdeploy.store.rings import MAX_RING_BYTES, PLAIN_RING, finished_ring, results_ring


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


def test_the_largest_ring_fits_one_datagram_and_larger_results_ring_plainly(tmp_path):
    bells = Doorbells(tmp_path)
    bell = bells.listen("results")
    bells.ring("results", b"x" * MAX_RING_BYTES)
    assert bell.wait(1) == [b"x" * MAX_RING_BYTES]
    row = ["r1", [pack("y" * 1000)], 1.0, 2.0, 3.0, None]
    assert results_ring([finished_ring([row])]).results[0].outputs == [pack("y" * 1000)]
    assert finished_ring([row] * (MAX_RING_BYTES // 1000)) == PLAIN_RING
    assert finished_ring([]) == PLAIN_RING
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
