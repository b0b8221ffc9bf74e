"""Offline: the demo runs end to end with the network disabled; nothing is fetched at run time."""

from __future__ import annotations

import json
import socket

import pytest

from controlarm.cli import main


def test_demo_runs_with_sockets_blocked(tmp_path, monkeypatch, capsys):
    attempts: list[tuple] = []

    def blocked(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "socket", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path / "demo"), "-q"])
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    assert attempts == []
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["matching"]["n_sets"] > 0
    assert "<script src" not in (tmp_path / "demo" / "index.html").read_text()
