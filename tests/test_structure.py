"""The import graph of fcn_keras: imports point down the layers only, no circles at all.

Every `import` / `from ... import` in the package (at module level or inside functions) is
read with `ast`. Each module belongs to one part (below), and each part may import only the
parts listed for it in ALLOWED (no upward or sideways import); and the graph between files
(modules) has no circle either, inside a part included.
"""

import ast
import os
import sys


PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fcn_keras")

# Who may import whom (besides itself). Bottom to top:
#   util (_io, _progress), conventions
#   images                        image files -> 8-bit RGB (Pillow)
#   metrics, losses               keras metrics and losses on the conventions
#   data, viz, models             independent of each other; models compiles with the metrics
#                                 and losses
#   weights                       sources and converters for the models
#   export                        above weights and data
#   resolve                       fcn_keras/resolve.py: what a model spec names (reads the zoo
#                                 and export's format table), for all that open models
#   training                      above weights, data and the resolver
#   api                           fcn_keras.build / list_models and the package root
#   predict                       loading.py (one way to open a model) and predict.py: any
#                                 model file, zoo name or artefact -> labels (uses export, api);
#                                 tiling.py (exact tiles), staged.py (staged tiles), refine.py (dense CRF), inference.py
#                                 (the compiled call) and auto_precision.py beside it
#   cli                           fcn_keras/cli/: the command line, may use anything
ALLOWED = {
    "util": set(),
    "conventions": set(),
    "images": {"conventions"},
    "metrics": {"conventions"},
    "losses": {"conventions"},
    "data": {"conventions", "images", "util"},
    "viz": {"conventions", "metrics", "util"},
    "models": {"conventions", "metrics", "losses"},
    "weights": {"models", "conventions", "util"},
    "export": {"weights", "models", "data", "metrics", "conventions", "util"},
    "resolve": {"export", "weights", "models", "conventions", "util"},
    "training": {"resolve", "weights", "models", "metrics", "losses", "data", "viz", "conventions", "util"},
    "api": {"resolve", "weights", "models", "conventions", "util"},
    "predict": {"api", "resolve", "export", "weights", "models", "data", "viz", "images", "metrics",
                "conventions", "util"},
    "cli": {"api", "predict", "resolve", "export", "training", "weights", "models", "data", "viz", "images",
            "metrics", "losses", "conventions", "util"},
}


def part_of(module):
    """The part of a dotted module name inside fcn_keras ("fcn_keras.weights.zoo" -> "weights")."""
    names = module.split(".")
    if len(names) > 1 and names[1] == "cli":
        return "cli"
    if len(names) == 1 or names[1] == "api":
        return "api"
    return {"_io": "util", "_progress": "util", "loading": "predict", "tiling": "predict", "staged": "predict",
            "refine": "predict", "inference": "predict", "auto_precision": "predict"}.get(names[1], names[1])


def _is_module(dotted, package=PACKAGE):
    path = os.path.join(os.path.dirname(package), *dotted.split("."))
    return os.path.isdir(path) or os.path.isfile(path + ".py")


def _imported(node, module, is_package, package=PACKAGE):
    """The fcn_keras modules one import statement names (`package`: the fcn_keras folder read)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "fcn_keras"]
    base = node.module or ""
    if node.level:
        parent = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(parent + ([base] if base else []))
    if base.split(".")[0] != "fcn_keras":
        return []
    # `from fcn_keras import data` imports the module fcn_keras.data; `... import build` the root.
    return [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}", package) else base for a in node.names]


def import_graph(package=PACKAGE):
    """{(file relative to the repository, its part, imported part)} for every cross-part import
    of the fcn_keras folder `package`."""
    edges = set()
    root = os.path.dirname(package)
    for folder, _, files in os.walk(package):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            module = rel[:-3].replace(os.sep, ".").removesuffix(".__init__")
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for target in _imported(node, module, name == "__init__.py", package):
                        if part_of(target) != part_of(module):
                            edges.add((rel.replace(os.sep, "/"), part_of(module), part_of(target)))
    return edges


def module_graph():
    """{module: {modules it names in an import}} for every module of fcn_keras (dotted names).

    A package's own `__init__` counts only where it is named (`from fcn_keras.models import FCN`
    names fcn_keras.models); the implicit import of a module's parent packages does not.
    """
    graph = {}
    root = os.path.dirname(PACKAGE)
    for folder, _, files in os.walk(PACKAGE):
        for name in (n for n in files if n.endswith(".py")):
            path = os.path.join(folder, name)
            module = os.path.relpath(path, root)[:-3].replace(os.sep, ".").removesuffix(".__init__")
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            graph[module] = {target for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                             for target in _imported(node, module, name == "__init__.py") if target != module}
    return graph


def _circles(graph):
    """The strongly connected components of `graph` with more than one node (sorted lists)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _cycles(graph):
    """Parts that sit on a cycle of `graph` ({part: {parts}})."""
    on_cycle = set()

    def reach(start, node, seen):
        for nxt in graph.get(node, ()):
            if nxt == start:
                on_cycle.add(start)
            elif nxt not in seen:
                seen.add(nxt)
                reach(start, nxt, seen)

    for part in graph:
        reach(part, part, set())
    return on_cycle


def _not_allowed(edges):
    """The (file, imported part) pairs of `edges` that ALLOWED does not permit."""
    assert {src for _, src, _ in edges} <= set(ALLOWED), "a module outside the known parts"
    return {(f, dst) for f, src, dst in edges if dst not in ALLOWED[src]}


def test_imports_point_down_the_layers_only():
    assert _not_allowed(import_graph()) == set(), "upward or sideways imports: see ALLOWED"


def test_the_layer_check_finds_upward_imports(tmp_path):
    """A planted package whose model code imports the command line (absolutely, relatively and
    inside a function) and whose metrics import the data: each import is found and refused."""
    package = tmp_path / "fcn_keras"
    files = {
        "__init__.py": "from fcn_keras.api import build\n",
        "api.py": "from fcn_keras.models import fcn\n",
        "cli/__init__.py": "def main():\n    pass\n",
        "data/__init__.py": "",
        "models/__init__.py": "",
        "models/fcn.py": "from fcn_keras import metrics\n\ndef f():\n    from ..cli import main\n",
        "models/layers.py": "import fcn_keras.cli\n",
        "metrics.py": "from fcn_keras.data import *\n",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    assert _not_allowed(import_graph(str(package))) == {
        ("fcn_keras/models/fcn.py", "cli"), ("fcn_keras/models/layers.py", "cli"),
        ("fcn_keras/metrics.py", "data")}


def test_the_measured_graph_has_no_cycle():
    graph = {}
    for _, src, dst in import_graph():
        graph.setdefault(src, set()).add(dst)
    assert _cycles(graph) == set(), graph


def test_no_import_circle_between_files():
    graph = module_graph()
    assert {d for deps in graph.values() for d in deps} <= set(graph), "an import names no module of the package"
    assert _circles(graph) == []


def test_the_circle_finder_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


# What model code may import: Keras, NumPy and the standard library outside fcn_keras; inside it,
# the conventions, the metrics and losses (FCN.compile's defaults) and models itself.
MODELS_THIRD_PARTY = {"keras", "numpy"}
MODELS_PARTS = {"models", "conventions", "metrics", "losses"}


def test_models_import_only_keras_and_the_conventions():
    """The model code runs on any Keras backend: Keras, NumPy, the standard library, and of
    fcn_keras only the conventions and the metrics (no TensorFlow, JAX, torch, data, weights...)."""
    root = os.path.dirname(PACKAGE)
    for folder, _, files in os.walk(os.path.join(PACKAGE, "models")):
        for name in (n for n in files if n.endswith(".py")):
            path = os.path.join(folder, name)
            module = os.path.relpath(path, root)[:-3].replace(os.sep, ".").removesuffix(".__init__")
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    roots = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    roots = {node.module.split(".")[0]}
                elif isinstance(node, ast.ImportFrom):
                    roots = {"fcn_keras"}
                else:
                    continue
                outside = roots - {"fcn_keras"} - MODELS_THIRD_PARTY - set(sys.stdlib_module_names)
                assert not outside, (path, ast.unparse(node))
                parts = {part_of(t) for t in _imported(node, module, name == "__init__.py")}
                assert parts <= MODELS_PARTS, (path, ast.unparse(node))


def test_the_registry_is_plain_data():
    """models/registry.py (backbones and HEADS) imports only the standard library, at any level:
    the command line reads its names before Keras is imported."""
    with open(os.path.join(PACKAGE, "models", "registry.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            roots = {a.name.split(".")[0] for a in node.names} if isinstance(node, ast.Import) else \
                {(node.module or "").split(".")[0] if not node.level else "fcn_keras"}
            assert roots <= set(sys.stdlib_module_names), ast.unparse(node)
