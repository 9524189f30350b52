"""The local stack's processes and database for the demo, the benchmark and the tests: a free port, a
database built afresh from sql/, and `bedrockctl` commands run as child processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from bedrock_usage import db
from bedrock_usage.config import MySQLParams
from bedrock_usage.migrate import migrate

REPO = Path(__file__).resolve().parent.parent


def recreate_database(params: MySQLParams) -> None:
    """Drop the database and build it again from sql/: demo and benchmark runs start from nothing."""
    conn = db.connect(params, with_database=False)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{params.database}`")
    finally:
        conn.close()
    migrate(params)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`bedrockctl consumer run` (or another long-running command: `enforcer run`) as a child process, in
    its own process group, so SIGKILL takes the JVM too."""

    def __init__(self, env: dict[str, str], log_path: Path, command: tuple[str, ...] = ("consumer", "run")) -> None:
        self._env = {**os.environ, **env}
        self._log_path = log_path
        self._command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        out = open(self._log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "bedrockctl"), *self._command],
            env=self._env, stdout=out, stderr=out, start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole group: supervisor, JVM and record processors die mid-stream (also whatever
        is left of the group after the supervisor itself has exited)."""
        if self.process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 40.0) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else None
