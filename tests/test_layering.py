"""The package's import structure, read statically from the source (imports inside
functions included): no import cycle, and nothing outside ms_gan/cli imports the CLI."""
import ast
import os

from tests.helpers import ROOT

PACKAGE = os.path.join(ROOT, "ms_gan")


def _modules():
    """{module name: file path} of every module of ms_gan."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].replace(os.sep, ".")
                found[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(folder, name)
    return found


def _package_of(module, path):
    return module if path.endswith("__init__.py") else module.rpartition(".")[0]


def import_graph():
    """{module: {imported ms_gan modules}} from every import statement, at any depth."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = _package_of(module, path).split(".")
                    parent = parent[: len(parent) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                # `from pkg import name` imports the module pkg.name when there is one, else pkg
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names]
            else:
                continue
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module and name.startswith("ms_gan"):
                    targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "ms_gan.checkpoint" in graph["ms_gan.generate"]
    assert "ms_gan.models.registry" in graph["ms_gan.generate"] or "ms_gan.models" in graph["ms_gan.generate"]


def test_find_cycles_reports_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_ms_gan():
    assert find_cycles(import_graph()) == []


def test_nothing_outside_cli_imports_the_cli():
    offenders = {module: sorted(t for t in targets if t == "ms_gan.cli" or t.startswith("ms_gan.cli."))
                 for module, targets in import_graph().items()
                 if not (module == "ms_gan.cli" or module.startswith("ms_gan.cli.")) and module != "ms_gan.__main__"}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_training_does_not_import_evaluation():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("ms_gan.train"):
            assert not [t for t in targets if t.startswith("ms_gan.eval")], module
