"""The default install (`pip install .`, no extras) holds every package fcn_keras imports:
`fcn-keras demo` exports with tf2onnx, onnx, onnxruntime and LiteRT, so those are
install_requires, not an extra. Only the other Keras backends (jax, torch: the `jax` / `torch`
extras) are imported by choice, when KERAS_BACKEND names them (the command line says so in
one line before any work when they are missing)."""

import ast
import importlib.metadata as md
import pathlib
import re
import sys

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: modules imported only on the backend of that name, with the extra that installs them
# modules of optional parts, each from its own extra (the part says which when it is missing)
BY_CHOICE = {"jax": "jax", "torch": "torch", "mediapipe": "mediapipe", "openvino": "openvino",
             "pydensecrf": "crf"}


def _setup_lists():
    """setup.py's install_requires and extras_require, as written (literals only)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", None) == "setup")
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords
          if k.arg in ("install_requires", "extras_require")}
    return kw["install_requires"], kw["extras_require"]


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements):
    """The distributions `requirements` install (installed metadata, markers evaluated)."""
    env = dict(default_environment(), extra="")
    seen, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = _norm(req.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in (md.requires(req.name) or [])]
        except md.PackageNotFoundError:
            pass
    return seen


def _imported_modules():
    """{top-level module: [files]} of every absolute import in fcn_keras/ (lazy ones too)."""
    found = {}
    for path in sorted((ROOT / "fcn_keras").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "fcn_keras" and top not in sys.stdlib_module_names:
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def test_default_install_covers_every_import():
    install_requires, extras = _setup_lists()
    default = _closure(install_requires)
    owners = md.packages_distributions()
    missing = {}
    for module, files in _imported_modules().items():
        if module in BY_CHOICE:
            assert BY_CHOICE[module] in extras, f"{module}: no `{BY_CHOICE[module]}` extra"
            continue
        dists = {_norm(d) for d in owners.get(module, [])}
        assert dists, f"{module} (imported by {files[0]}) is not installed here"
        if not dists & default:
            missing[module] = sorted(set(files))
    assert not missing, f"imported by fcn_keras but not in the default install: {missing}"


def test_export_extra_is_an_alias():
    install_requires, extras = _setup_lists()
    assert "export" in extras and not extras["export"]
    assert {_norm(Requirement(r).name) for r in install_requires} >= {
        "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"}
