"""The import graph of packet/: which room imports which, import circles, and module sizes.

    python scripts/import_graph.py            # rooms and the arrows between them
    python scripts/import_graph.py --modules  # every module's imports of the project's own modules
    python scripts/import_graph.py --dot > graph.dot && dot -Tpng graph.dot > graph.png

Exits 1 when the modules import each other in a circle. Reads the code as text (ast); runs nothing.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "packet"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def own_imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of the project this file imports (at any depth of the file)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("packet"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("packet"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
    return {name for name in found if name in modules}


def graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    edges = {module_name(f): own_imports(f, modules) - {module_name(f)} for f in files}
    # Importing packet.x.y also runs packet/__init__ and packet/x/__init__: those hold docstrings only.
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "(top)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", action="store_true", help="list every module's own imports")
    parser.add_argument("--dot", action="store_true", help="Graphviz dot of the rooms")
    args = parser.parse_args(argv)
    edges = graph()
    rooms: dict[str, set[str]] = {}
    for source, targets in edges.items():
        rooms.setdefault(room(source), set()).update(room(t) for t in targets if room(t) != room(source))
    if args.dot:
        print("digraph rooms {")
        for source, targets in sorted(rooms.items()):
            for target in sorted(targets):
                print(f'  "{source}" -> "{target}";')
        print("}")
    elif args.modules:
        for source in sorted(edges):
            print(f"{source}: {', '.join(sorted(edges[source])) or '-'}")
    else:
        for source in sorted(rooms):
            lines = sum(len(p.read_text(encoding='utf-8').splitlines())
                        for p in PACKAGE.rglob("*.py") if room(module_name(p)) == source)
            print(f"{source:10} {lines:6} lines  -> {', '.join(sorted(rooms[source])) or '-'}")
    found = circles(edges)
    for component in found:
        print("circle: " + " <-> ".join(component), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
