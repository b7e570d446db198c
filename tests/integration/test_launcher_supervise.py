"""The launcher outlives a member: a nats-server killed with -9 is reported, the others keep running, and with
``--restart`` it is started again (real nats-server processes on loopback, bounded in time)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.cluster import NatsServer
from infra.cluster.local import Members, supervise


def test_a_dead_member_is_reported_and_restarted(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 nats_server: NatsServer) -> None:
    # (nats_server: the same skip-or-fail rule as every NATS test when the binary is missing.)
    victim = NatsServer(store_dir=tmp_path / "victim")
    survivor = NatsServer(store_dir=tmp_path / "survivor")
    with victim, survivor:
        members = Members([victim, survivor], [], [], tmp_path)
        victim.kill()
        deadline = time.monotonic() + 30
        supervise(members, restart_after=0.2, poll=0.05,
                  until=lambda: (victim.running and "restarted" in capsys.readouterr().out)
                  or time.monotonic() > deadline)
        assert victim.running and survivor.running
        assert members.dead() == []


def test_without_restart_a_dead_member_stays_down_and_is_said_once(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   nats_server: NatsServer) -> None:
    victim = NatsServer(store_dir=tmp_path / "victim")
    with victim:
        members = Members([victim], [], [], tmp_path)
        victim.kill()
        ends = time.monotonic() + 0.5
        supervise(members, restart_after=None, poll=0.05, until=lambda: time.monotonic() > ends)
        out = capsys.readouterr().out
        assert out.count("nats victim exited; the others keep running (left down)") == 1
        assert members.dead() == ["nats victim"]
