"""The package's modules import each other without a cycle (imports inside functions included:
a lazy import that closes a loop only hides it)."""

import ast
import os

import fairseq_weam

PACKAGE_DIR = os.path.dirname(fairseq_weam.__file__)


def module_names():
    """``{dotted name: path}`` of every module of the package (packages by their __init__)."""
    out = {}
    for root, _, files in os.walk(PACKAGE_DIR):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), os.path.dirname(PACKAGE_DIR))[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(root, f)
    return out


def imported(module: str, path: str, modules) -> set:
    """The package's modules that ``module`` names in an import statement anywhere in it."""
    is_package = path.endswith("__init__.py")
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # `from pkg import mod` imports the module pkg.mod when there is one.
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
            found.update(subs if subs and len(subs) == len(node.names) else [target, *subs])
    return {name for name in found if name in modules and name != module}


def find_cycle(graph):
    """One cycle as a list of modules (first = last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def import_graph():
    modules = module_names()
    return {m: imported(m, p, modules) for m, p in modules.items()}


def test_the_graph_sees_known_imports():
    graph = import_graph()
    assert "fairseq_weam.data.language_sampling" in graph["fairseq_weam.evaluation.sweep"]
    assert "fairseq_weam.evaluation.report" in graph["fairseq_weam.evaluation.sweep"]  # a lazy import
    assert "fairseq_weam.core.data_dir" in graph["fairseq_weam.evaluation.embeddings"]


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
