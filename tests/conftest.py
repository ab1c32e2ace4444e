"""Shared fixtures: a real Label Studio server on loopback for the live round-trip tests."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from modelkit import ROOT, free_port

# Fixed, throwaway credentials of the test server; nothing outside the test ever sees them.
_USER = "ie-tests@example.com"
_PASSWORD = "ie-tests-password"
_TOKEN = "ie0tests0legacy0token0000000000000000000"
_START_TIMEOUT_S = 240  # a cold start runs ~200 Django migrations: ~30 s on 2 cores


@dataclass(frozen=True)
class LiveStudio:
    url: str
    api_key: str
    start_seconds: float  # from launch until it answered with the test token
    log: Path
    user: str = _USER  # the account's login, for a browser (the pages want a session, not the token)
    password: str = _PASSWORD


@dataclass
class _Launch:
    proc: subprocess.Popen[bytes]
    url: str
    scratch: Path
    log: Path
    started: float
    template: Path | None  # where the cached database of this version lives (None: no cache)
    from_template: bool


_LAUNCHED: list[_Launch] = []


def _server_env(data_dir: Path) -> dict[str, str]:
    """Only our settings: Label Studio also reads un-prefixed names (USERNAME, PORT, HOST, ...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "HEARTEX_"))}
    for bare in ("USERNAME", "PASSWORD", "USER_TOKEN", "PORT", "HOST", "DEBUG", "DJANGO_DB", "DATABASE_NAME"):
        env.pop(bare, None)
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_DATABASE_NAME=str(data_dir / "label_studio.sqlite3"),
        LABEL_STUDIO_DJANGO_DB="sqlite",
        LABEL_STUDIO_USERNAME=_USER,
        LABEL_STUDIO_PASSWORD=_PASSWORD,
        LABEL_STUDIO_USER_TOKEN=_TOKEN,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",  # no call to pypi.org: CI may be offline
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        LABEL_STUDIO_SENTRY_DSN="",
        LABEL_STUDIO_FRONTEND_SENTRY_DSN="",
        LABEL_STUDIO_LOG_LEVEL="WARNING",
        # the ML backend under test (ie-serve) listens on loopback, which Label Studio 1.23 refuses by
        # default twice: the backend URL (ML_BLOCK_LOCAL_IP) and the /webhook it registers for it
        # (SSRF_PROTECTION_ENABLED; the refusal then fails the whole POST /api/ml with 403)
        LABEL_STUDIO_ML_BLOCK_LOCAL_IP="false",
        LABEL_STUDIO_SSRF_PROTECTION_ENABLED="false",
    )
    return env


def _label_studio_exe() -> str:
    exe = Path(sys.executable).with_name("label-studio")
    return str(exe) if exe.exists() else (shutil.which("label-studio") or "label-studio")


def _template_path(config: pytest.Config) -> Path | None:
    """The cached database: the schema (~200 migrations, most of a cold start) and the test user."""
    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    if cache is None:
        return None
    import label_studio

    key = hashlib.sha256(f"{_USER}:{_TOKEN}".encode()).hexdigest()[:8]
    return cache.mkdir("label-studio-db") / f"label_studio-{label_studio.__version__}-{key}.sqlite3"


def _launch(config: pytest.Config) -> _Launch:
    scratch = Path(tempfile.mkdtemp(prefix="ie-label-studio-"))
    data_dir = scratch / "data"
    data_dir.mkdir()
    template = _template_path(config)
    from_template = template is not None and template.exists()
    if from_template:
        # the server re-checks its migrations itself, so a stale copy costs time, never correctness
        shutil.copyfile(template, data_dir / "label_studio.sqlite3")
    port = free_port()
    log = scratch / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [_label_studio_exe(), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "--port", str(port), "--data-dir", str(data_dir)],
            env=_server_env(data_dir), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    launch = _Launch(
        proc, f"http://127.0.0.1:{port}", scratch, log, time.monotonic(), template, from_template
    )
    _LAUNCHED.append(launch)
    return launch


def _save_template(launch: _Launch) -> None:
    """Snapshot the database of a freshly migrated server before any test has written to it."""
    assert launch.template is not None
    tmp = launch.template.with_name(f".{launch.template.name}.{os.getpid()}.tmp")
    src = sqlite3.connect(f"file:{launch.scratch / 'data' / 'label_studio.sqlite3'}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    os.replace(tmp, launch.template)


def _get(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def _shutdown(launch: _Launch) -> None:
    """Stop the server by its PID (its own process group) and remove its data dir."""
    proc = launch.proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    shutil.rmtree(launch.scratch, ignore_errors=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Launch the server once the live tests are collected, so it starts while the other tests run."""
    if session.config.option.collectonly or _LAUNCHED or importlib.util.find_spec("label_studio") is None:
        return
    if any("label_studio_server" in getattr(item, "fixturenames", ()) for item in session.items):
        _launch(session.config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    while _LAUNCHED:
        _shutdown(_LAUNCHED.pop())


@pytest.fixture
def studio(label_studio_server, monkeypatch):
    """The live server, with ``LABEL_STUDIO_URL`` / ``LABEL_STUDIO_API_KEY`` set for the test."""
    from ie.annotation.client import KEY_ENV, URL_ENV

    monkeypatch.setenv(URL_ENV, label_studio_server.url)
    monkeypatch.setenv(KEY_ENV, label_studio_server.api_key)
    return label_studio_server


@pytest.fixture(scope="session")
def label_studio_server(request: pytest.FixtureRequest) -> Iterator[LiveStudio]:
    """A real Label Studio (SQLite, temp data dir) on a free loopback port, stopped by PID at the end."""
    if importlib.util.find_spec("label_studio") is None:
        pytest.skip(
            "the `studio` extra is not installed (pip install -e '.[studio]'): no Label Studio server"
        )
    launch = _LAUNCHED[-1] if _LAUNCHED else _launch(request.config)
    waited = time.monotonic()
    while _get(f"{launch.url}/health") != 200:
        if launch.proc.poll() is not None or time.monotonic() > launch.started + _START_TIMEOUT_S:
            tail = launch.log.read_text(errors="replace")[-3000:]
            pytest.fail(
                f"Label Studio did not start on {launch.url} (exit {launch.proc.poll()}); log:\n{tail}"
            )
        time.sleep(0.2)
    # the port may have been taken by another server in between: make sure this one is ours
    if launch.proc.poll() is not None or _get(f"{launch.url}/api/current-user/whoami", _TOKEN) != 200:
        pytest.fail(f"the server on {launch.url} does not accept the test token; log: {launch.log}")
    ready = time.monotonic()
    if launch.template is not None and not launch.from_template:
        _save_template(launch)
    print(
        f"\nLabel Studio ready {ready - launch.started:.1f} s after launch "
        f"({'cached' if launch.from_template else 'fresh'} database; waited {ready - waited:.1f} s)"
    )
    try:
        yield LiveStudio(launch.url, _TOKEN, ready - launch.started, launch.log)
    finally:
        _LAUNCHED.remove(launch)
        _shutdown(launch)


# ---------------------------------------------------------------------------------------------
# a real CPU-sized model, trained once per test session on the gold seeds
# ---------------------------------------------------------------------------------------------

# 20 epochs fit the seeds to span F1 ~0.98 and relation F1 ~0.75 (12 epochs: relation F1 ~0.13, too few
# relations for event assembly to be exercised); ~3.5 CPU-minutes. configs/cpu-tiny.yaml's 40 reach ~1.0.
TINY_MODEL_EPOCHS = 20


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A joint model trained by ``train.py`` with configs/cpu-tiny.yaml (fewer epochs).

    Set ``IE_TEST_MODEL`` to a directory trained the same way to reuse it instead (local iteration).
    """
    reuse = os.environ.get("IE_TEST_MODEL")
    if reuse:
        path = Path(reuse).resolve()  # tests may chdir
        if not (path / "config.json").is_file():
            pytest.fail(f"IE_TEST_MODEL={reuse}: not a trained model directory")
        return path
    out = tmp_path_factory.mktemp("tiny-model") / "model"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "cpu-tiny.yaml"),
         "--output_dir", str(out), "--num_train_epochs", str(TINY_MODEL_EPOCHS)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0 or not (out / "config.json").is_file():
        pytest.fail(f"training the tiny model failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    print(f"\ntiny model trained in {time.monotonic() - started:.0f} s: {out}")
    return out
