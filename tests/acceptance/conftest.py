"""Drive the real ``hookwise`` command the way a user does: a fresh directory, a shell
environment, and nothing but the command's exit code and output to go on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
COMMAND_TIMEOUT = 60.0
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"$ hookwise {' '.join(self.args)}\n-> exit {self.code}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


class Shell:
    """Runs ``hookwise`` in one directory with one environment, like a terminal would."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "hookwise", *args]

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> Result:
        completed = subprocess.run(
            self.command(*args),
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(tuple(args), completed.returncode, completed.stdout, completed.stderr)

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> Process:
        """Start a long-running command; its output goes to files (a full pipe would stall it)."""
        log = self.cwd / f"hookwise-{args[0]}-{time.monotonic_ns()}"
        stdout = open(f"{log}.out", "w")  # noqa: SIM115 - closed by Process.stop
        stderr = open(f"{log}.err", "w")  # noqa: SIM115
        popen = subprocess.Popen(
            self.command(*args),
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        return Process(popen, Path(f"{log}.out"), Path(f"{log}.err"), (stdout, stderr))


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    files: tuple[Any, Any]

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_for_http(self, url: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"hookwise exited with {self.popen.returncode} before answering {url}\n"
                    f"{self.stdout}\n{self.stderr}"
                )
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{url} did not answer within {timeout}s\n{self.stderr}")

    def wait_for_output(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stdout or text in self.stderr:
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared\n{self.stdout}\n{self.stderr}")

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, as a process manager would; the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        """Make sure the process is gone (kill if it must) and its files closed."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT)
        for file in self.files:
            file.close()


def _clean_environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("HOOKWISE_") and name not in ("PYTHONPATH", "COLUMNS")
    }
    env.update(PYTHONPATH=str(SRC), NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


@pytest.fixture
def hookwise(project: Path) -> Shell:
    return Shell(project, _clean_environment())


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def running() -> Iterator[list[Process]]:
    """Processes a test starts; whatever is still alive at the end is killed."""
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


@pytest.fixture
def initialized(hookwise: Shell) -> Shell:
    """A project after ``hookwise init``, with the secret it printed exported (also as
    the secret ``hookwise send`` signs with)."""
    result = hookwise("init")
    assert result.code == 0, result
    secret = secret_from_init(result)
    hookwise.env.update(HOOKWISE_DEMO_SECRET=secret, HOOKWISE_SEND_SECRET=secret)
    return hookwise


def secret_from_init(result: Result) -> str:
    """The freshly generated secret ``hookwise init`` tells the user to export."""
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("export HOOKWISE_DEMO_SECRET="):
            return line.split("=", 1)[1]
    raise AssertionError(f"init printed no secret to export\n{result}")
