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


# The layers, lowest first: a module may import its own layer and the ones below, never above
# (lazy imports inside functions included). Measured on the code, not wished: docs/architecture.md.
LAYERS = (
    ("core",),  # the floor: errors, atomic writes, output dirs, device, checkpoints, the data directory
    # pooling.py: sentence vectors from hidden states, shared by the contrastive objective and
    # evaluation; it imports only core, so it sits with data.
    ("data", "pooling"),
    ("objectives",),
    ("criterions",),
    # the package itself (fairseq_weam/__init__.py) registers the task and the criterion.
    ("tasks", "<root>"),
    # train_runner.py: runs fairseq-train for the sweep, the XNLI fine-tune and the demo; it imports
    # only core and is used from evaluation and cli, so it sits with prepare, below them.
    ("prepare", "train_runner"),
    ("evaluation", "interop"),
    ("cli",),
)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def rank_of(module: str) -> int:
    name = layer_of(module)
    ranks = [k for k, layer in enumerate(LAYERS) if name in layer]
    assert ranks, f"{module}: in no layer of LAYERS (add its folder or module to the right layer)"
    return ranks[0]


def test_every_module_has_a_layer():
    for module in import_graph():
        rank_of(module)


def test_no_import_climbs_a_layer():
    upward = [
        f"{m} ({layer_of(m)}) imports {d} ({layer_of(d)})"
        for m, deps in sorted(import_graph().items())
        for d in sorted(deps)
        if rank_of(d) > rank_of(m)
    ]
    assert not upward, "imports from a lower layer into a higher one:\n" + "\n".join(upward)


def test_core_imports_nothing_of_the_package_above_it():
    graph = import_graph()
    leaks = [f"{m} imports {d}" for m in sorted(graph) if layer_of(m) == "core" for d in sorted(graph[m])]
    leaks = [x for x in leaks if not x.split(" imports ")[1].startswith("fairseq_weam.core")]
    assert not leaks, "\n".join(leaks)


def test_the_layer_rule_sees_a_climb():
    assert rank_of("fairseq_weam.data.masking") < rank_of("fairseq_weam.objectives.batch")
    assert rank_of("fairseq_weam.core.errors") < rank_of("fairseq_weam.pooling") < rank_of("fairseq_weam.objectives")
    assert rank_of("fairseq_weam.train_runner") < rank_of("fairseq_weam.evaluation.sweep")
    assert rank_of("fairseq_weam.evaluation.xnli") == rank_of("fairseq_weam.interop.hf_export")


MAX_LINES = 450


def test_no_module_is_over_450_lines():
    root = os.path.dirname(PACKAGE_DIR)
    long = {}
    for path in module_names().values():
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            long[rel] = n
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"
