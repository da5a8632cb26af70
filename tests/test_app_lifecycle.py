"""Stopping `fairpriv app` stops the server: nothing is left serving after a SIGTERM.

`fairpriv app` used to run Streamlit as a child and wait on it; a SIGTERM (a service
manager's stop, `kill`) ended the CLI and left the child serving. It now execs Streamlit.
This test starts the command as a user would, on a free port, waits until the port
accepts connections, sends SIGTERM to the process it started, and checks that the
process exits and the port is closed within a few seconds.

Marked ``slow`` (5-7 s alone on 2 CPU cores, 13-17 s beside other tests: mostly the
CLI importing the engine before it execs) and ``ci``: nothing faster guards this, so
``make test-ci``, which `.ci/run` runs after ``make test``, runs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ci,
    pytest.mark.skipif(os.name != "posix", reason="SIGTERM and exec are POSIX"),
]

START_TIMEOUT_S = 60  # Streamlit's start, after the CLI imports the engine
STOP_TIMEOUT_S = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def fairpriv_command() -> list[str]:
    """`fairpriv` as installed next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("fairpriv")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fairpriv_cli"]


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, ...
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[1] == str(pid):
            found.append(int(stat.parent.name))
    return found


def exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``proc`` has exited, leaving it unreaped: its pid, and so its process group's
    id, cannot be reused until ``proc.wait()``, so the group can still be killed safely."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def test_sigterm_stops_the_app_and_frees_its_port(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "app.log").open("w+b")
    # Its own session and process group, so that anything it leaves behind can be killed.
    proc = subprocess.Popen([*fairpriv_command(), "app", "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def output() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-3000:]

    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not accepts(port):
            if exited(proc):
                pytest.fail(f"`fairpriv app` exited before serving:\n{output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"`fairpriv app` did not accept connections within {START_TIMEOUT_S} s:\n"
                            f"{output()}")
            time.sleep(0.2)
        assert f"fairpriv app on http://127.0.0.1:{port}" in output()
        if Path("/proc").is_dir():
            # The process started is the server itself (exec), with no child to leave behind.
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            assert b"streamlit" in cmdline, cmdline
            assert children(proc.pid) == []

        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while not exited(proc):
            if time.monotonic() > deadline:
                pytest.fail(f"`fairpriv app` still runs {STOP_TIMEOUT_S} s after SIGTERM:\n{output()}")
            time.sleep(0.1)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while accepts(port):
            if time.monotonic() > deadline:
                pytest.fail(f"port {port} still accepts connections {STOP_TIMEOUT_S} s after "
                            "`fairpriv app` exited: a server was left behind")
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # nothing left in the group
            os.killpg(proc.pid, signal.SIGKILL)  # the group it leads, leftovers included
        proc.wait(timeout=10)
        log.close()
