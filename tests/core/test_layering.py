"""The package layering of docs/architecture.md#layering: no import cycle between koe's packages, and the shared
libraries below the stages import no stage.

Imports are read with `ast` from every module under src/koe, function-level (lazy) ones included: a cycle hidden in
a function is still a cycle of the design. A node is a package (`koe.train`) or a top-level module (`koe.config`).
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

import koe

ROOT = Path(koe.__file__).parent
# shared libraries and what they may import from koe: nothing that is a pipeline stage
FOUNDATIONS = {"koe.training": {"koe.config", "koe.stage", "koe.seed"}}


def _node(module: str) -> str:
    return ".".join(module.split(".")[:2])


def package_graph(root: Path = ROOT) -> dict[str, dict[str, list[str]]]:
    """{package: {imported package: [files with such an import]}} over koe's own imports."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        source = _node(".".join(rel.with_suffix("").parts).removesuffix(".__init__"))
        for n in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                targets = [n.module]
            else:
                continue
            for target in targets:
                if target.startswith("koe.") and _node(target) != source:
                    graph[source][_node(target)].append(str(rel))
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, {})):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycle_between_packages():
    graph = package_graph()
    cycle = find_cycle(graph)
    if cycle is not None:
        steps = [f"{a} ({', '.join(sorted(set(graph[a][b]))[:2])})" for a, b in itertools.pairwise(cycle)]
        raise AssertionError("import cycle: " + " -> ".join(steps) + f" -> {cycle[-1]}")


def test_shared_libraries_import_no_stage():
    graph = package_graph()
    for package, allowed in FOUNDATIONS.items():
        extra = {dep: files for dep, files in graph.get(package, {}).items() if dep not in allowed}
        assert not extra, f"{package} must stay below the stages but imports {extra}"


def test_the_checker_finds_a_planted_cycle(tmp_path):
    """The test above could fail: a planted two-package cycle (like the former koe.model <-> koe.train) is found."""
    pkg = tmp_path / "koe"
    for name, imports in (("model", "from koe.train.config import X"), ("train", "import koe.model.init"),
                          ("stage", "")):
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
        (pkg / name / "mod.py").write_text(f"def f():\n    {imports or 'pass'}\n")
    graph = package_graph(pkg)
    assert find_cycle(graph) == ["koe.model", "koe.train", "koe.model"]
    assert graph["koe.model"]["koe.train"] == ["koe/model/mod.py"]


def test_config_modules_stay_free_of_torch():
    """`koe train --help` loads TrainConfig: koe.model and koe.training must not pull torch in through __init__."""
    import subprocess
    import sys

    code = ("import sys, koe.train.config, koe.ssl.config, koe.model.config, koe.training.config; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
