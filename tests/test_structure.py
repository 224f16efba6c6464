"""The import graph between fcn_keras' parts: imports point down the layers only, no cycles.

Every `import` / `from ... import` in the package (at module level or inside functions) is
read with `ast`; each module belongs to one part (below), and each part may import only the
parts listed for it in ALLOWED.
"""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fcn_keras")

# Who may import whom (besides itself). Bottom to top:
#   util (_io, _progress), conventions
#   images                        image files -> 8-bit RGB (Pillow)
#   metrics                       keras metrics on the conventions
#   data, viz, models             independent of each other; models compiles with the metrics
#   weights                       sources and converters for the models
#   export, training              above weights and data
#   api                           fcn_keras.build / list_models and the package root
#   predict                       any model file or artefact -> labels (uses export, api)
#   cli                           fcn_keras/cli/: the command line, may use anything
ALLOWED = {
    "util": set(),
    "conventions": set(),
    "images": {"conventions"},
    "metrics": {"conventions"},
    "data": {"conventions", "images", "util"},
    "viz": {"conventions", "metrics", "util"},
    "models": {"conventions", "metrics"},
    "weights": {"models", "conventions", "util"},
    "export": {"weights", "models", "data", "metrics", "conventions", "util"},
    "training": {"weights", "models", "metrics", "data", "viz", "conventions", "util"},
    "api": {"weights", "models", "conventions", "util"},
    "predict": {"api", "export", "weights", "models", "data", "viz", "images", "metrics",
                "conventions", "util"},
    "cli": {"api", "predict", "export", "training", "weights", "models", "data", "viz", "images",
            "metrics", "conventions", "util"},
}

# Imports other owners still have to remove (file, imported part).
KNOWN_VIOLATIONS = set()


def part_of(module):
    """The part of a dotted module name inside fcn_keras ("fcn_keras.weights.zoo" -> "weights")."""
    names = module.split(".")
    if len(names) > 1 and names[1] == "cli":
        return "cli"
    if len(names) == 1 or names[1] == "api":
        return "api"
    return {"_io": "util", "_progress": "util"}.get(names[1], names[1])


def _is_module(dotted):
    path = os.path.join(os.path.dirname(PACKAGE), *dotted.split("."))
    return os.path.isdir(path) or os.path.isfile(path + ".py")


def _imported(node, module, is_package):
    """The fcn_keras modules one import statement names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "fcn_keras"]
    base = node.module or ""
    if node.level:
        parent = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(parent + ([base] if base else []))
    if base.split(".")[0] != "fcn_keras":
        return []
    # `from fcn_keras import data` imports the module fcn_keras.data; `... import build` the root.
    return [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names]


def import_graph():
    """{(file relative to the repository, imported part)} for every cross-part import."""
    edges = set()
    root = os.path.dirname(PACKAGE)
    for folder, _, files in os.walk(PACKAGE):
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
                    for target in _imported(node, module, name == "__init__.py"):
                        if part_of(target) != part_of(module):
                            edges.add((rel.replace(os.sep, "/"), part_of(module), part_of(target)))
    return edges


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


def test_allowed_layers_form_no_cycle():
    assert _cycles(ALLOWED) == set()


def test_imports_point_down_the_layers_only():
    edges = import_graph()
    assert {src for _, src, _ in edges} <= set(ALLOWED), "a module outside the known parts"
    bad = {(f, dst) for f, src, dst in edges if dst not in ALLOWED[src]}
    assert bad - KNOWN_VIOLATIONS == set(), "upward or sideways imports: see ALLOWED"


def test_the_measured_graph_has_no_cycle():
    graph = {}
    for _, src, dst in import_graph():
        graph.setdefault(src, set()).add(dst)
    assert _cycles(graph) == set(), graph


def test_models_import_only_keras_and_the_conventions():
    """The model code runs on any Keras backend: no TensorFlow, no other part of fcn_keras."""
    for folder, _, files in os.walk(os.path.join(PACKAGE, "models")):
        for name in (n for n in files if n.endswith(".py")):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    roots = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    roots = [node.module.split(".")[0]]
                else:
                    continue
                assert not {"tensorflow", "tf", "torch", "jax"} & set(roots), (name, roots)


@pytest.mark.parametrize("module,part", [
    ("fcn_keras", "api"), ("fcn_keras.api", "api"), ("fcn_keras.cli", "cli"), ("fcn_keras.cli.demo", "cli"),
    ("fcn_keras._io", "util"), ("fcn_keras.models.layers", "models"), ("fcn_keras.metrics", "metrics"),
])
def test_parts(module, part):
    assert part_of(module) == part
