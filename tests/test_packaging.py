"""A normal (non-editable) install works: the wheel carries the runtime data the package reads.

The wheel is built from a copy of the sources (an in-tree build could pick up a stale ``build/``),
installed with ``--no-deps`` into a fresh virtual environment that sees this environment's
dependencies but not its (editable) ``ie``, and used from a directory outside the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ("ie/resources/gazetteer.yaml", "ie/resources/extraction_record.schema.json")


def _run(*cmd: str | Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing may point at src/
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the python of a fresh venv where that wheel is the only ``ie``)."""
    tmp = tmp_path_factory.mktemp("packaging")
    sources = tmp / "sources"
    sources.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, sources / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", sources / "src", ignore=ignore)
    # offline: the build backend (setuptools, in the dev extra) comes from this environment
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", tmp / "dist", sources, cwd=tmp)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("ie-*.whl")

    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(_run(python, "-c", where, cwd=tmp).strip())
    # this environment's dependencies as a plain path entry: its .pth files (the editable ie) stay unread
    (purelib / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel, cwd=tmp)
    return wheel, python


def test_wheel_contains_the_package_data(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in PACKAGE_DATA:
        assert name in names, f"{name} is not in {wheel.name}"
        assert zipfile.ZipFile(wheel).read(name) == (ROOT / "src" / name).read_bytes()


def test_installed_copy_loads_its_aliases_and_record_schema(installed, tmp_path):
    _, python = installed
    probe = (
        "import json, sys, ie, ie.events.canonical, ie.events.records\n"
        "table = ie.events.canonical.AliasTable.load()\n"
        "schema = json.loads(ie.events.records.SCHEMA_PATH.read_text(encoding='utf-8'))\n"
        "print(json.dumps({'ie': ie.__file__, 'prefix': sys.prefix, 'version': table.version,\n"
        "    'actors': len(table.actors), 'title': schema.get('title'),\n"
        "    'current': schema == json.loads(ie.events.records.record_json_schema_text())}))\n"
    )
    got = json.loads(_run(python, "-c", probe, cwd=tmp_path))  # cwd outside the source tree
    # the wheel's copy, not src/ of this checkout
    assert Path(got["ie"]).is_relative_to(Path(got["prefix"])), got
    assert not Path(got["ie"]).is_relative_to(ROOT), got
    expected = json.loads((ROOT / "src" / PACKAGE_DATA[1]).read_text(encoding="utf-8"))
    assert got["title"] == expected.get("title") and got["current"]
    from ie.events.canonical import AliasTable

    source = AliasTable.load()
    assert (got["version"], got["actors"]) == (source.version, len(source.actors)) and got["actors"] > 0
