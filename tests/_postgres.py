"""A throwaway PostgreSQL server for the engine tests: initdb into a temporary folder, listen on a
Unix socket only (no network), stop and delete at the end.

Debian's ``postgresql`` package provides the binaries (``.ci/run`` installs it when missing). As
root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root). When the
binaries are missing the tests are skipped, unless ``CONTROLARM_REQUIRE_ENGINES=1`` (set by CI),
which turns the skip into a failure so an engine test can never pass by not running.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = ["postgres_server", "require_or_skip"]


def require_or_skip(reason: str) -> None:
    if os.environ.get("CONTROLARM_REQUIRE_ENGINES") == "1":
        pytest.fail(f"{reason} (CONTROLARM_REQUIRE_ENGINES=1)")
    pytest.skip(reason)


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    return Path(dirs[-1]) if dirs else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server():
    """Yield a libpq URI (``postgresql://postgres@/postgres?host=...&port=...``) of a fresh server."""
    bindir = _bin_dir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        require_or_skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="controlarm-pg-"))
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            require_or_skip("running as root and there is no postgres user to run the server")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o755)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, sock, port = root / "data", root, _free_port()
    env = {**os.environ, "LC_ALL": "C"}
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, env=env, timeout=120)
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(root / "log"),
                        "-o", f"-p {port} -k {sock} -c listen_addresses='' -c fsync=off", "start"],
                       check=True, capture_output=True, env=env, timeout=120)
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr!r} {log[-2000:]}")
    try:
        yield f"postgresql://postgres@/postgres?host={sock}&port={port}"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, env=env, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
