"""The package's import layers, checked statically: no import cycle, no import from a lower layer to a higher one.

Every module under ``benchmark/`` is parsed (``ast``, nothing is imported) and every import in it
counts, function-level ones included: ``import benchmark.x.y`` is an edge to ``benchmark.x.y``;
``from benchmark.x import y`` to the module ``benchmark.x.y`` when ``y`` is a submodule, else to
``benchmark.x``; relative imports are resolved against the importing module's package. Imports
of a module's own ancestor packages (``benchmark.methods.base`` importing ``benchmark.methods``
to register every method) are ignored: Python has imported them before the module anyway.

Layers, bottom to top; a module may import modules of its own layer and of the layers below:

  0. foundation: ``registry, types, paths, io, names, config, progress, _compat``
  1. ``data``, ``models``
  2. ``methods``
  3. ``metrics``
  4. ``runs`` (run store, run identity, shard merge, provenance, secret scrubbing)
  5. ``report``, ``tracking``
  6. entry points: ``run, evaluate, plugins, demo, __main__``, the package's ``__init__``, ``perf``, ``training``

This is the order of DESIGN.md, with the foundation modules named as their own bottom layer and
``training`` among the entry points (it builds models and reads data, and the evaluation loop
calls it to make a missing toy checkpoint). Same-layer imports are allowed, but never in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "benchmark"
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("benchmark.registry", "benchmark.types", "benchmark.paths", "benchmark.io", "benchmark.config",
                    "benchmark.names", "benchmark.errors",
                    "benchmark.progress", "benchmark._compat")),
    ("data, models", ("benchmark.data", "benchmark.models")),
    ("methods", ("benchmark.methods",)),
    ("metrics", ("benchmark.metrics",)),
    ("runs", ("benchmark.runs",)),
    ("report, tracking", ("benchmark.report", "benchmark.tracking")),
    ("entry points", ("benchmark.run", "benchmark.fastpath", "benchmark.evaluate", "benchmark.plugins", "benchmark.demo",
                      "benchmark.__main__", "benchmark", "benchmark.perf", "benchmark.training")),
]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """``{dotted module name: file}`` of every ``.py`` file of the package folder ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return files[name].name == "__init__.py"


def imports_of(name: str, files: dict[str, Path]) -> list[tuple[str, int]]:
    """``(imported module of the package, line)`` for every import statement in module ``name``."""
    tree = ast.parse(files[name].read_text(), str(files[name]))
    here = name if _is_package(name, files) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: against the importing module's package
                anchor = here.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in files else base, node.lineno))
    out = []
    for target, line in found:
        while target and target not in files:  # `import benchmark.x.y.z` of a non-module name: its module
            target = target.rpartition(".")[0]
        ancestor = name == target or name.startswith(target + ".")
        if target and not ancestor:
            out.append((target, line))
    return out


def layer_of(name: str, package: str, layers) -> int | None:
    """Index of the layer whose longest prefix names the module (the package itself only exactly)."""
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            exact = name == prefix
            inside = prefix != package and name.startswith(prefix + ".")
            if (exact or inside) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def find_cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """``(cycle [a, b, ..., a], its strongly connected component)`` per component of several modules."""
    index, low, stack, on_stack, components, counter = {}, {}, [], set(), [], [0]

    def visit(node):  # Tarjan's algorithm
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.add(item)
                if item == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:
        start = min(component)
        paths = {start: [start]}  # breadth-first within the component: a shortest way back to start
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    cycles.append((paths[node] + [start], component))
                    queue = []
                    break
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    queue.append(nxt)
    return sorted(cycles, key=lambda item: item[0])


def check(root: Path, package: str = PACKAGE, layers=LAYERS) -> list[str]:
    """Every problem of the package at ``root``: cycles, upward imports, modules without a layer."""
    files = module_files(root, package)
    graph: dict[str, set[str]] = {name: set() for name in files}
    problems = []
    for name in files:
        for target, line in imports_of(name, files):
            graph[name].add(target)
            low, high = layer_of(name, package, layers), layer_of(target, package, layers)
            if low is not None and high is not None and high > low:
                problems.append(f"upward import: {name} ({layers[low][0]}) imports {target} ({layers[high][0]}) "
                                f"at {files[name].relative_to(root.parent)}:{line}")
    for name in files:
        if layer_of(name, package, layers) is None:
            problems.append(f"no layer: {name} (add it to LAYERS in tests/test_layers.py)")
    for cycle, component in find_cycles(graph):
        others = sorted(component - set(cycle))
        problems.append(f"import cycle: {' -> '.join(cycle)}"
                        + (f" (entangled with {', '.join(others)})" if others else ""))
    return problems


def test_the_package_has_no_import_cycle_and_no_upward_import():
    problems = check(REPO / PACKAGE)
    assert not problems, "\n".join(problems)


def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_reports_a_cycle_and_an_upward_import(tmp_path):
    """A tiny package with both faults, a function-level import, and allowed imports that must stay quiet."""
    root = _write(tmp_path / "pkg", {
        "__init__.py": "",
        "low.py": "import os\n\ndef f():\n    from pkg import high  # upward, inside a function\n",
        "high.py": "from pkg.low import f\n",  # with the line above: a cycle low -> high -> low
        "mid/__init__.py": "from pkg.mid.a import A\n",
        "mid/a.py": "import pkg.mid\nfrom . import b\nA = 1\n",  # ancestor import ignored; relative import
        "mid/b.py": "from ..low import f\n",  # relative, downward: allowed
    })
    layers = [("bottom", ("pkg.low",)), ("middle", ("pkg.mid",)), ("top", ("pkg.high", "pkg"))]
    problems = check(root, "pkg", layers)
    assert "import cycle: pkg.high -> pkg.low -> pkg.high" in problems
    assert "upward import: pkg.low (bottom) imports pkg.high (top) at pkg/low.py:4" in problems
    assert len(problems) == 2, problems


def test_the_checker_reports_a_module_outside_every_layer(tmp_path):
    root = _write(tmp_path / "pkg", {"__init__.py": "", "stray.py": "", "known.py": ""})
    assert check(root, "pkg", [("all", ("pkg.known", "pkg"))]) == ["no layer: pkg.stray (add it to LAYERS in "
                                                                     "tests/test_layers.py)"]
