"""Shared test helpers (`check_architecture` is the one battery every FCN passes), and the
split of the suite into a fast default and the slow rest (tests/README.md):

    pytest                      the fast tests: what a contributor runs (minutes)
    pytest -m slow              the slow tests only (`@pytest.mark.slow`)
    pytest --all                everything (CI: .ci/run)

A test is marked slow when it takes more than about 10 s on 2 cores by itself: other backends
end to end, the browser, full-width exports, demo runs, multi-worker clusters, Ctrl-C runs and
long training. Without `--all` or a `-m` expression, slow tests are deselected, except in the
files named on the command line (`pytest tests/export/test_web.py` runs that file whole).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA's CPU compiler at its default optimisation level spends seconds on each small program
# (under JAX every weight initialiser of a new shape is one: ~60 for a GoogLeNet FCN); the
# tests' programs are tiny, so they compile without LLVM's optimisations, about 10x faster.
# Inherited by the tests' subprocesses; a user's own XLA_FLAGS win.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
# The web export downloads ONNX Runtime Web when no copy is at hand; the tests never reach the
# internet: a closed port (tests that fetch it serve their own tarball on 127.0.0.1).
os.environ.setdefault("FCN_KERAS_NPM_REGISTRY", "http://127.0.0.1:9")

import keras  # noqa: E402

import fcn_keras  # noqa: E402
from fcn_keras import FCN  # noqa: E402,F401 - registers the classes keras.models.load_model needs

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long test (training, the demo, full exports, the browser)")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_addoption(parser):
    parser.addoption("--all", action="store_true", dest="run_all",
                     help="run the slow tests too (@pytest.mark.slow; CI runs --all)")


def _named_files(config):
    """The test files named on the command line (as `path` or `path::test`), absolute."""
    files = set()
    for arg in config.args:
        path = os.path.abspath(os.path.join(config.invocation_params.dir, arg.split("::")[0]))
        if os.path.isfile(path):
            files.add(path)
    return files


def pytest_collection_modifyitems(config, items):
    """Deselects the slow tests unless --all or a -m expression is given, or their file is named."""
    if config.getoption("run_all") or config.getoption("markexpr"):
        return
    named = _named_files(config)
    keep, slow = [], []
    for item in items:
        (slow if item.get_closest_marker("slow") and str(item.path) not in named else keep).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = keep
        config._fcn_keras_slow = len(slow)


def pytest_terminal_summary(terminalreporter, config):
    n = getattr(config, "_fcn_keras_slow", 0)
    if n:
        terminalreporter.write_line(f"{n} slow tests deselected: `pytest -m slow` runs them, "
                                    "`pytest --all` everything")


PROGRAM = os.path.join(os.path.dirname(sys.executable), "fcn-keras")

# Sizes every architecture must map to same-size outputs: tiny, odd, non-multiples of 32.
SIZES = [(1, 1), (7, 9), (33, 47), (83, 117)]


def random_scores(model, seed=0):
    """`model` with non-zero score layers (they start at zero: every logit would be 0)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name.startswith("score_") and layer.weights:
            layer.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in layer.get_weights()])
    return model


def check_architecture(backbone, head, tmp_path, width=0.125, num_classes=5, fit_steps=16):
    """Builds, checks sizes, `.keras` round trip and that a short fit lowers the loss."""
    keras.utils.set_random_seed(0)  # initial weights and dropout masks independent of test order
    model = fcn_keras.build(backbone, head, num_classes=num_classes, width=width)
    assert isinstance(model, fcn_keras.FCN)
    rng = np.random.default_rng(0)
    for h, w in SIZES:
        x = rng.integers(0, 256, size=(2, h, w, 3)).astype("uint8")
        y = keras.ops.convert_to_numpy(model(x))
        assert y.shape == (2, h, w, num_classes), (backbone, head, (h, w), y.shape)
        assert y.dtype == np.float32
        assert np.isfinite(y).all()

    # Score layers start at zero: a fresh FCN predicts all-zero logits.
    np.testing.assert_array_equal(y, 0.0)

    # Give the score layers weights so the round trip compares something non-trivial.
    for layer in model.layers:
        if layer.name.startswith("score_") and layer.weights:
            layer.set_weights([rng.normal(0, 0.01, size=w.shape).astype("float32") for w in layer.get_weights()])
    x = rng.integers(0, 256, size=(1, 45, 61, 3)).astype("uint8")
    before = keras.ops.convert_to_numpy(model(x))
    path = tmp_path / f"{backbone}_{head}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is fcn_keras.FCN
    assert (loaded.backbone_name, loaded.head_name, loaded.num_classes) == (backbone, head, num_classes)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), before)
    assert [w.name for w in loaded.non_trainable_weights] == [w.name for w in model.non_trainable_weights]

    # A short fit on random data lowers the loss (measured without dropout, before/after).
    # Images near the mean colour keep random-init activations small, so a large step is stable.
    mean_rgb = np.array([122.68, 116.67, 104.01], "float32")
    images = (mean_rgb + rng.normal(0, 2, size=(4, 32, 36, 3))).astype("float32")
    # Skewed labels: even learning the class frequencies lowers the loss below log(C).
    labels = rng.choice(num_classes, size=(4, 32, 36), p=[0.6] + [0.4 / (num_classes - 1)] * (num_classes - 1))
    labels = labels.astype("int32")
    labels[:, :4] = 255  # ignored pixels
    model.compile(optimizer=keras.optimizers.Adam(2e-3), metrics=[])
    loss0 = model.evaluate(images, labels, batch_size=2, verbose=0)
    model.fit(images, labels, batch_size=2, epochs=fit_steps // 2, verbose=0)
    loss1 = model.evaluate(images, labels, batch_size=2, verbose=0)
    assert np.isfinite(loss1) and loss1 < loss0 - 0.05, (loss0, loss1)
    return model


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """A private KERAS_HOME so no test reads or writes the user's cache."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def make_tiny_voc(root, splits=(("train", 4), ("val", 2)), size=(40, 56), seed=0):
    """A PASCAL VOC folder (JPEGImages, SegmentationClass palette PNGs, ImageSets/Segmentation)
    of `size` (H, W) images; every mask holds the labels 0..20 in bands and a 255 border.

    Returns the ids per split, {split: [id, ...]}.
    """
    from PIL import Image

    from fcn_keras.conventions import voc_palette

    rng = np.random.default_rng(seed)
    for d in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    h, w = size
    ids, k = {}, 0
    for split, n in splits:
        ids[split] = []
        for _ in range(n):
            name = f"2012_{k:06d}"
            k += 1
            mask = ((np.arange(w)[None, :] * 21 // w + k) % 21 * np.ones((h, 1))).astype(np.uint8)
            mask[:2] = mask[-2:] = 255
            colours = voc_palette()[mask].astype(np.float32)
            image = np.clip(colours + rng.normal(0, 20, colours.shape), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(os.path.join(root, "JPEGImages", f"{name}.jpg"), quality=95)
            png = Image.fromarray(mask, mode="P")
            png.putpalette(voc_palette().reshape(-1).tolist())
            png.save(os.path.join(root, "SegmentationClass", f"{name}.png"))
            ids[split].append(name)
        with open(os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in ids[split]))
    return ids


def _tar_gz(path, files):
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def _encode(array, fmt):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt)
    return out.getvalue()


def prepare_tiny_pets(root):
    """A 3-image Oxford-IIIT Pet prepared by TFDS's own `oxford_iiit_pet` builder: its
    download manager fetches two archives laid out as the real ones (images/*.jpg;
    annotations/trimaps/*.png, trainval.txt, test.txt) from an HTTP server on 127.0.0.1,
    extracts them and writes the TFDS files. Only the builder's base URL is redirected.

    Splits: train = Abyssinian_1, beagle_2; test = pug_3, whose trimap holds a 7 (not a
    trimap value). Returns (data_dir, {file_name: trimap uint8 (12, 10)}).
    """
    import functools
    import http.server
    import threading

    from tensorflow_datasets.datasets.oxford_iiit_pet import oxford_iiit_pet_dataset_builder as pet

    from fcn_keras import data

    rng = np.random.default_rng(0)
    trimaps = {n: rng.integers(1, 4, (12, 10), dtype=np.uint8)
               for n in ("Abyssinian_1", "beagle_2", "pug_3")}
    trimaps["pug_3"][5, 5] = 7
    serve = os.path.join(root, "srv")
    os.makedirs(serve)
    _tar_gz(os.path.join(serve, "images.tar.gz"), {
        f"images/{n}.jpg": _encode(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8), "JPEG")
        for n in trimaps})
    files = {f"annotations/trimaps/{n}.png": _encode(t, "PNG") for n, t in trimaps.items()}
    files["annotations/trainval.txt"] = b"Abyssinian_1 1 1 1\nbeagle_2 5 2 1\n"
    files["annotations/test.txt"] = b"pug_3 26 2 1\n"
    _tar_gz(os.path.join(serve, "annotations.tar.gz"), files)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=serve))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data_dir = os.path.join(root, "tfds")
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(pet, "_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
            mp.setenv("NO_PROXY", "127.0.0.1")
            data.from_tfds("oxford_iiit_pet", "train", data_dir=data_dir)
    finally:
        server.shutdown()
        server.server_close()
    return data_dir, {f"{n}.jpg": t for n, t in trimaps.items()}


@pytest.fixture(scope="session")
def tiny_pets(tmp_path_factory):
    """`prepare_tiny_pets` once per test session: (data_dir, {file_name: trimap})."""
    return prepare_tiny_pets(str(tmp_path_factory.mktemp("pets")))


@pytest.fixture(scope="session")
def shapes_alexnet(tmp_path_factory):
    """FCN-8s AlexNet (width 0.125, 4 classes, Adam 3e-4) trained once per test session for
    6 epochs on 256 synthetic 64 px images, validated on shapes:val each epoch (about a
    minute on 2 CPU cores): the training test checks the run, the int8 export tests use a
    model whose labels mean something.

    Returns a namespace: model, history (the `History` of `training.train`), seconds (of
    training), out_dir (its files) and val_ds (shapes:val, batches of 16).
    """
    import time
    from types import SimpleNamespace

    from fcn_keras import data, training

    keras.utils.set_random_seed(0)
    model = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.125)
    model.compile(optimizer=keras.optimizers.Adam(3e-4))
    train_ds = data.pipeline(data.shapes("train", num_examples=256, image_size=64),
                             batch_size=8, training=True, seed=0, cache=True)
    val_ds = data.pipeline(data.shapes("val", image_size=64), batch_size=16, cache=True)
    out_dir = tmp_path_factory.mktemp("shapes_alexnet")
    t0 = time.time()
    history = training.train(model, train_ds, val_ds, epochs=6, out_dir=str(out_dir), verbose=0,
                             class_names=data.SHAPES_CLASSES)
    return SimpleNamespace(model=model, history=history, seconds=time.time() - t0,
                           out_dir=out_dir, val_ds=val_ds)


def wait_for(page, expression, timeout_s=60):
    """Polls `expression` in the page until it is truthy. page.evaluate is a DevTools call, which
    the server's Content-Security-Policy does not govern; wait_for_function evaluates a string
    in the page, which the policy (rightly) refuses."""
    import time

    end = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < end, f"{expression} still unset after {timeout_s} s"
        time.sleep(0.1)


def ctrl_c_as_at_a_terminal():
    """`preexec_fn` for a child that a test stops with SIGINT: the default disposition, as a
    program started at a terminal has it (a shell ignores SIGINT for background jobs, and CI
    may start the suite as one; Python then installs no KeyboardInterrupt handler)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_ports(n):
    """`n` TCP ports free on 127.0.0.1 now (for the processes of a test cluster)."""
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def fcn_keras_cli(*args, cwd=None, timeout=900, env=None):
    """Runs the installed `fcn-keras` program on this checkout, as a user would (no
    TF_CPP_MIN_LOG_LEVEL of our own: the program keeps TensorFlow's lines out itself).

    Args:
        args: the command line after `fcn-keras`.
        cwd: the working folder (None: this process's).
        timeout: seconds before the run is killed (subprocess.TimeoutExpired).
        env: extra environment variables.

    Returns:
        the `subprocess.CompletedProcess`, stdout and stderr as text.
    """
    env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    command = [PROGRAM] if os.path.exists(PROGRAM) else [sys.executable, "-m", "fcn_keras.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


DEMO_ARGS = ("demo", "--quick")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """README.md's `fcn-keras demo` plus `--quick`, run once per test session as a user runs
    it (a real subprocess in a fresh folder, so it writes the default `demo_output/`):
    tests/test_readme.py checks the README line runs, tests/test_cli.py what it prints and
    writes (a demo is the slowest command; one run serves both).

    Returns:
        (folder, DEMO_ARGS, the `subprocess.CompletedProcess`).
    """
    folder = tmp_path_factory.mktemp("demo")
    run = fcn_keras_cli(*DEMO_ARGS, cwd=folder, env={"KERAS_HOME": str(folder / "keras_home")})
    return folder, DEMO_ARGS, run


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts several processes that train (minutes)")
