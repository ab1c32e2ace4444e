"""The package layout follows the data flow: no module imports from a later stage, and no cycles.

Every ``import ie...`` counts, including those inside functions (a lazy import is still a
dependency); the stages are the folders of ``src/ie`` in the order the README lists them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from modelkit import ROOT

SRC = ROOT / "src"
STAGES = ("core", "text", "annotation", "model", "training", "events", "evaluation", "serving", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module → the ``ie`` modules it imports (``from ie.x import y`` counts ``ie.x.y`` if a module)."""
    files = {_module_name(p): p for p in (SRC / "ie").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.split(".")[0] == "ie"}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
                    base = base.rstrip(".")
                if base.split(".")[0] != "ie":
                    continue
                for a in node.names:
                    deps.add(f"{base}.{a.name}" if f"{base}.{a.name}" in files else base)
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def stage(module: str) -> int:
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in STAGES:
        return -1  # the package root and resources sit below every stage
    return STAGES.index(parts[1])


def test_every_module_lives_in_a_stage_folder():
    loose = sorted(m for m in import_graph() if stage(m) < 0 and m not in ("ie", "ie.resources"))
    assert not loose, f"modules outside the stage folders {STAGES}: {loose}"


def test_no_module_imports_from_a_later_stage():
    upward = sorted(f"{m} -> {d}" for m, deps in import_graph().items() for d in deps if stage(d) > stage(m))
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_a_real_violation(tmp_path, monkeypatch):
    """The walker itself: an upward import and a cycle planted in a copy of the tree are found."""
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(SRC / "ie", copy / "ie")
    (copy / "ie" / "core" / "bad.py").write_text("def f():\n    from ie.events.assembly import x\n")
    (copy / "ie" / "core" / "a.py").write_text("from ie.core import b\n")
    (copy / "ie" / "core" / "b.py").write_text("import ie.core.a\n")
    monkeypatch.setattr(__import__(__name__), "SRC", copy)
    graph = import_graph()
    assert "ie.events.assembly" in graph["ie.core.bad"] and stage("ie.events.assembly") > stage("ie.core.bad")
    assert "ie.core.b" in graph["ie.core.a"] and "ie.core.a" in graph["ie.core.b"]
