"""The plan of the house (ARCHITECTURE.md): rooms with a docstring each, no import circles, lower
rooms never import higher ones, no module too long to read."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["(top)", "model", "workers", "records", "intake", "classify", "pdf", "mailings", "pipeline",
         "service", "desk"]
TOP_BASICS = {"packet.errors", "packet.config", "packet.log", "packet.fsutil", "packet.pdfread", "packet"}
MAX_LINES = 650


def _graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_circles():
    graph = _graph()
    assert graph.circles(graph.graph()) == []


def test_lower_rooms_never_import_higher_ones():
    graph = _graph()
    wrong = []
    for source, targets in graph.graph().items():
        for target in targets:
            if graph.room(target) == "(top)":
                if target not in TOP_BASICS and graph.room(source) != "(top)":
                    wrong.append((source, target))
                continue
            if graph.room(source) == "(top)":
                continue  # the command line and the demo sit on top of everything
            if ORDER.index(graph.room(target)) > ORDER.index(graph.room(source)):
                wrong.append((source, target))
    assert wrong == []


def test_every_room_says_what_it_owns_and_holds_nothing_else():
    for init in sorted((ROOT / "packet").glob("*/__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree) or ""
        assert "Owns" in doc or "owns" in doc, f"{init} does not say what the room owns"
        assert "Must not" in doc or "must not" in doc, f"{init} does not say what the room must not touch"
        code = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        assert code == [], f"{init} re-exports or runs code"


def test_no_module_too_long_to_read():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "packet").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_no_late_imports_of_the_project_outside_the_command_line():
    late = []
    for path in (ROOT / "packet").rglob("*.py"):
        if path.name == "cli.py":
            continue  # commands import their room when run, so `--help` stays fast
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("packet"):
                        late.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert late == []
