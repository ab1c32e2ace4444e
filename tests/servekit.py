"""``ie-serve`` as its own process, for the live tests: start, wait until healthy, call, stop."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from modelkit import console_command, free_port

USER, PASSWORD = "label-studio", "serve-live-test-password"


@dataclass
class RunningBackend:
    url: str
    proc: subprocess.Popen
    log: Path

    def call(self, path: str, body: Any | None = None, timeout: float = 300) -> Any:
        """GET (no body) or POST a JSON body with the test's basic auth; the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data)
        request.add_header("Authorization", auth_header())
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())


def auth_header(user: str = USER, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wait_healthy(backend: RunningBackend, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if backend.proc.poll() is not None:
            pytest.fail(f"ie-serve exited with {backend.proc.returncode}:\n{backend.log.read_text()[-3000:]}")
        try:
            backend.call("/health", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"ie-serve did not answer on {backend.url}:\n{backend.log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_backend(
    model: Path, log: Path, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[RunningBackend]:
    """``ie-serve --model MODEL`` on a free loopback port with basic auth; killed at the end if still up."""
    port = free_port()
    environ = {**os.environ, "BASIC_AUTH_USER": USER, "BASIC_AUTH_PASS": PASSWORD, **(env or {})}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*console_command("ie-serve", "ie.cli.serve"), "--model", str(model), "--port", str(port),
             "--device", "cpu", *args],
            env=environ, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    backend = RunningBackend(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_healthy(backend)
        yield backend
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
