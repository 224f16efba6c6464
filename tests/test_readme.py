"""Every command the documentation shows runs, so the documentation cannot drift from the code.

Which blocks: every fenced block marked ```bash (or sh, shell) or ```python in README.md and in
every page docs/*.md. Blocks of any other kind (```text, unmarked: output, error messages) are
shown, not run. In a shell block each logical line (`\\` continuations and multi-line quotes
joined, comments dropped, `&&` chains split) is one test; each ```python block is one test.

How: every test runs in a fresh folder of its own that holds the stand-ins the documentation
names, prepared by fixtures, never by another documented command: `VOCdevkit/VOC2012` (a tiny
VOC-layout set: 40x56 images, labels 0..20 and 255), `photos/` (two JPEGs), `images/`,
`masks/` and `class_dict.csv` (a CamVid-like folder pair with train and val sub-folders and
RGB colour masks), and the model files a line reads (`Do.models`: width-0.125 nets built and
saved once per session). So any one test passes alone (`-k`), and in any order. Command
lines run as a real subprocess of the installed console script, as a user runs them (no
TF_CPP_MIN_LOG_LEVEL of the test's own).

The tables below say how each line runs: as written, with arguments that make it small and
fast (`--width 0.125`, one short epoch), rewritten (a placeholder filled in, an offline source
of the same data), or skipped for a stated reason (a download, the test suite itself, a second
machine). A line the tables do not know fails the test: a new documented command needs an
entry. Every line that runs checks what it wrote or printed (`creates` and `check`; a row
whose only check would be "no exception" is refused by `test_every_row_checks_something`),
and that it leaves nothing git would track. The long rows (training, the demo, exports) are
marked `slow`. Known failures are xfail(strict=True) with the reason.
"""

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import fcn_keras

from .conftest import fcn_keras_cli, make_tiny_voc, random_scores
from .data.conftest import CAMVID_LIKE, make_folder_pair, write_class_dict

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The pages followed: README.md, then docs/*.md in name order (paths relative to ROOT).
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
SHELL_LANGS = ("bash", "sh", "shell")
FAST = ("--width", "0.125", "--epochs", "1", "--steps-per-epoch", "2")
DOWNLOAD = "needs a download (no internet in the test)"
TWO_MACHINES = ("one process of a cluster; tests/training/test_many_machines.py runs the "
                "documented cluster on 127.0.0.1 and checks it")
# What a command must never print (progress bars and TensorFlow's start-up lines included).
NOISE = ("\x1b[", "\r", "oneDNN", "absl", "cpu_feature_guard", "Traceback", "Warning:")


@dataclass
class Do:
    """How one documented line runs.

    Attributes:
        extra: arguments appended to a command line.
        code: the Python line run instead of the documented one (None: as written).
        why: why it is rewritten.
        skip: why the line is not run (None: it runs).
        xfail: why the line is known to fail today (it must fail until fixed).
        creates: files or folders the line must leave in its working folder.
        check: further checks: for a command line a function (run, folder) of the
            `subprocess.CompletedProcess` and the working folder; for a Python line a
            function (namespace, folder, printed text) run after its block.
        fixture: the session fixture that runs the line (for a run other tests check too):
            it returns (working folder, arguments after `fcn-keras`, CompletedProcess).
        models: {path in the working folder: kind of `MODELS`}: model files the line reads,
            put there before it runs.
        slow: a long row (marked `slow`: training, the demo, exports).
    """
    extra: tuple = ()
    code: str = None
    why: str = None
    skip: str = None
    xfail: str = None
    creates: tuple = field(default_factory=tuple)
    check: object = None
    fixture: str = None
    models: dict = field(default_factory=dict)
    slow: bool = False


# ----------------------------------------------------------------------------- checks
def _quiet(run):
    for noise in NOISE:
        assert noise not in run.stdout + run.stderr, noise


def _labels_match_photos(masks, photos):
    """Every photo has a `<name>_labels.png` under `masks` that opens, of the photo's size,
    holding class ids only."""
    names = sorted(p.name for p in photos.iterdir())
    assert names
    for name in names:
        with Image.open(masks / f"{name}_labels.png") as labels, Image.open(photos / name) as photo:
            assert labels.size == photo.size, (name, labels.size, photo.size)
            assert np.asarray(labels).max() < 21


def _artefact_runs(path, num_classes=21):
    """An exported artefact opens in its runtime and labels a 40x56 image."""
    labels, scores = fcn_keras.export.runner(str(path))(np.full((1, 40, 56, 3), 120, np.uint8))
    assert labels.shape == (1, 40, 56) and scores.shape == (1, 40, 56, num_classes)


def _check_demo(run, folder):
    assert "mean IU" in run.stdout, run.stdout[-2000:]
    keras.saving.load_model(folder / "demo_output" / "train" / "model.keras", compile=False)


def _check_train(run, folder):
    """The staged schedule's three stages, one short line per epoch, every promised file."""
    _quiet(run)
    lines = run.stdout.splitlines()
    assert lines[0].startswith("training from scratch (no --weights): Adam"), lines[0]
    assert [line for line in lines if line.startswith("stage ")] == [
        "stage 1/3: FCN-32s from scratch", "stage 2/3: FCN-16s from FCN-32s",
        "stage 3/3: FCN-8s from FCN-16s"]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 3 and all(len(line) < 120 for line in epochs), epochs
    for name in ("model.keras", "curves.png", "history.json", "scores.json",
                 "fcn32s/model.keras", "fcn8s/model.keras"):
        assert (folder / "runs" / "voc" / name).exists(), name
    model = keras.saving.load_model(folder / "runs" / "voc" / "model.keras", compile=False)
    assert (model.head_name, model.num_classes) == ("8s", 21)


def _check_evaluate(run, folder):
    """The report and its JSON, of every image of the val split."""
    _quiet(run)
    assert "mean IU" in run.stdout
    with open(folder / "scores.json") as f:
        scores = json.load(f)
    split = folder / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt"
    assert scores["images"] == len(split.read_text().split())
    assert 0 <= scores["mean_iou"] <= 1, scores


def _check_predict(run, folder):
    _quiet(run)
    _labels_match_photos(folder / "masks", folder / "photos")


def _check_export(run, folder):
    _quiet(run)
    _artefact_runs(folder / "fcn8s.tflite")
    meta = fcn_keras.export.read_metadata(str(folder / "fcn8s.tflite"))
    assert meta["quantize"] == "float16", meta


def _check_zoo(run, folder):
    _quiet(run)
    assert "voc-fcn8s" in run.stdout and "134,489,759" in run.stdout.replace(" ", ""), run.stdout


def _check_data_check(run, folder):
    """The own-data example: both split folders read, the rare class named, no problem."""
    _quiet(run)
    assert "folders:train: 6 examples" in run.stdout and "folders:val: 2 examples" in run.stdout
    assert "sign" in run.stdout and "no problems found" in run.stdout
    with Image.open(folder / "runs" / "classes.png") as plot:
        assert min(plot.size) > 100


def _check_own_train(run, folder):
    _quiet(run)
    model = keras.saving.load_model(folder / "runs" / "own" / "model.keras", compile=False)
    assert model.num_classes == 4 and list(model.class_names) == [n for n, _ in CAMVID_LIKE]


def _check_folder_evaluate(run, folder):
    _quiet(run)
    assert "mean IU" in run.stdout and "sign" in run.stdout


def _check_boundary(run, folder):
    _quiet(run)
    assert "mean IU" in run.stdout and "boundary F" in run.stdout, run.stdout


def _py_fitted(ns, folder, printed):
    assert int(ns["model"].optimizer.iterations) > 0, "model.fit made no step"


def _py_tflite(ns, folder, printed):
    _artefact_runs(folder / "fcn8s.tflite")


def _py_zoo(ns, folder, printed):
    assert "voc-fcn8s" in [entry["name"] for entry in ns["entries"]]


def _py_report(ns, folder, printed):
    assert "mean IU" in printed, printed
    assert ns["toy"].num_classes > 1 and ns["pets"].num_classes > 1


def _py_exports(ns, folder, printed):
    assert ns["labels"].shape == (2, 240, 320) and ns["scores"].shape[:3] == (2, 240, 320)
    assert len(ns["class_names"]) == 21
    for path in ("fcn8s_savedmodel", "fcn8s.tflite", "fcn8s.onnx", "fcn8s_voc.onnx"):
        _artefact_runs(folder / path)
    assert "fcn.js" in (folder / "fcn8s_web" / "index.html").read_text(encoding="utf-8")


def _py_full_resolution(ns, folder, printed):
    assert ns["labels"].shape == ns["image"].shape[:2], ns["labels"].shape
    assert ns["scores"].shape == (*ns["image"].shape[:2], 21)


# ----------------------------------------------------------------------------- the tables
# Shell lines (comments stripped, continuations joined, `&&` chains split, whitespace runs
# made one space), as written in the documentation.
VOC_MODEL = {"runs/voc/model.keras": "voc"}
CLI = {
    "pip install -e .": Do(skip="installs the package; this test runs inside that installation"),
    'pip install -e ".[test]"':
        Do(skip="installs the package and its test extra; this test runs inside that installation"),
    'pip install -e ".[cuda]"': Do(skip="installs TensorFlow's CUDA build (a GPU machine's install)"),
    'pip install -e ".[jax]" "jax[cuda12]>=0.10,<0.11"':
        Do(skip="installs JAX's CUDA build (a GPU machine's install)"),
    'pip install -e ".[torch]"': Do(skip="installs PyTorch (the test installation has it)"),
    "fcn-keras demo": Do(extra=("--quick",), creates=("demo_output",), fixture="demo_run",
                         check=_check_demo, slow=True),
    "python -m pytest": Do(skip="runs the test suite this test belongs to"),
    "fcn-keras train --backbone vgg16 --head 8s --data VOCdevkit/VOC2012 --schedule staged "
    "--out runs/voc": Do(extra=FAST, check=_check_train, slow=True),
    "fcn-keras evaluate --model runs/voc/model.keras --data VOCdevkit/VOC2012 --split val "
    "--json scores.json": Do(models=VOC_MODEL, creates=("scores.json",), check=_check_evaluate, slow=True),
    "fcn-keras predict --model runs/voc/model.keras photos/ --out masks/":
        Do(models=VOC_MODEL, creates=("masks",), check=_check_predict),
    "fcn-keras export runs/voc/model.keras --format tflite --quantize float16 -o fcn8s.tflite":
        Do(models=VOC_MODEL, creates=("fcn8s.tflite",), check=_check_export, slow=True),
    "fcn-keras convert fcn8s-heavy-pascal.caffemodel --backbone vgg16 --head 8s -o fcn8s.keras":
        Do(skip="needs the paper's FCN-8s caffemodel (about 540 MB to download)"),
    "fcn-keras zoo": Do(check=_check_zoo),
    "fcn-keras serve demo_output/web":
        Do(skip="serves until Ctrl-C; tests/export/test_web.py runs it on the demo's web folder, "
                "opens the printed URL in Chromium and segments a photo there"),
    "fcn-keras data check folders:images,masks --colors class_dict.csv --plot runs/classes.png":
        Do(creates=("runs/classes.png",), check=_check_data_check),
    "fcn-keras train --data folders:images,masks --colors class_dict.csv --class-weights "
    "median_frequency --out runs/own": Do(extra=FAST, check=_check_own_train, slow=True),
    "fcn-keras evaluate --data folders:images,masks --colors class_dict.csv --model "
    "runs/own/model.keras": Do(models={"runs/own/model.keras": "own"}, check=_check_folder_evaluate,
                                 slow=True),
    # docs/full-resolution.md
    "fcn-keras predict --model fcn8s.keras photos/ --out masks/ --max-size 0 --tile auto":
        Do(models={"fcn8s.keras": "voc"}, check=_check_predict, slow=True),
    "fcn-keras predict --model fcn8s.keras photos/ --out masks/ --tta flip --refine crf":
        Do(models={"fcn8s.keras": "voc"}, check=_check_predict, slow=True),
    "fcn-keras evaluate --model fcn8s.keras --data VOCdevkit/VOC2012 --tta flip --refine crf":
        Do(models={"fcn8s.keras": "voc"}, check=_check_boundary, slow=True),
    # docs/many-machines.md
    """export TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, "task": """
    """{"type": "worker", "index": 0}}'""": Do(skip=TWO_MACHINES),
    "fcn-keras train --strategy multiworker --data shapes --backbone alexnet --width 0.125 "
    "--schedule at-once --crop-size 64 --batch-size 8 --val-split none --out runs/cluster":
        Do(skip=TWO_MACHINES),
    "fcn-keras --backend jax train --distribute data_parallel --coordinator 127.0.0.1:12355 "
    "--num-processes 2 --process-id 0 --data shapes --backbone alexnet --width 0.125 --schedule "
    "at-once --crop-size 64 --batch-size 8 --val-split none --out runs/jax-cluster":
        Do(skip=TWO_MACHINES),
    """HOSTS=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed 's/$/:12345/' | paste -sd, -)""":
        Do(skip="a SLURM batch script: needs a SLURM cluster"),
    """srun bash -c 'TF_CONFIG="{\\"cluster\\": {\\"worker\\": [\\"${HOSTS//,/\\",\\"}\\"]}, """
    """\\"task\\": {\\"type\\": \\"worker\\", \\"index\\": $SLURM_PROCID}}" fcn-keras train """
    """--strategy multiworker --data /data/VOC --weights imagenet --out /shared/runs/voc'""":
        Do(skip="a SLURM batch script: needs a SLURM cluster"),
}

# Python lines (trailing comments stripped), as written in the documentation. Import lines run
# as written without an entry. Each block runs on its own (no names from elsewhere but
# `given`), in a folder holding the stand-ins.
PY = {
    'model = fcn_keras.build("vgg16", "8s", num_classes=21, weights="imagenet")':
        Do(code='model = fcn_keras.build("vgg16", "8s", num_classes=21, width=0.125)',
           why="the ImageNet weights are a download: the same net, built at width 0.125"),
    "model.compile()": Do(),
    'train = data.pipeline(data.from_directory("VOCdevkit/VOC2012", "train"), training=True)': Do(),
    "model.fit(train, epochs=2)":
        Do(code="model.fit(train, epochs=1)", why="one epoch is enough here", check=_py_fitted, slow=True),
    'fcn_keras.export.export(model, "fcn8s.tflite", format="tflite")':
        Do(creates=("fcn8s.tflite",), check=_py_tflite, slow=True),
    'fcn_keras.build(weights="voc-fcn8s")': Do(skip=DOWNLOAD),
    'fcn_keras.build("alexnet", "32s", weights="imagenet")': Do(skip=DOWNLOAD),
    'fcn_keras.build("vgg16", "8s", weights="fcn8s-heavy-pascal.caffemodel")':
        Do(skip="needs the paper's FCN-8s caffemodel (about 540 MB to download)"),
    "entries = fcn_keras.list_models()": Do(check=_py_zoo),
    'train = data.pipeline(data.from_directory("VOCdevkit/VOC2012", "train"), batch_size=1, '
    'training=True)': Do(),
    'val = data.pipeline(data.from_directory("VOCdevkit/VOC2012", "val"))': Do(),
    'pets = data.from_tfds("oxford_iiit_pet", "train")':
        Do(code='pets = data.from_tfds("oxford_iiit_pet", "train", data_dir=TFDS_DIR, '
                'download=False)',
           why="TFDS cannot download here: it reads a copy TFDS prepared from local archives"),
    'toy = data.shapes("train")': Do(),
    "model.fit(train, validation_data=val, epochs=2)":
        Do(code="model.fit(train, validation_data=val, epochs=1)", why="one epoch is enough here",
           check=_py_fitted, slow=True),
    "print(training.format_report(training.evaluate(model, val)))": Do(check=_py_report),
    'export(model, "fcn8s_savedmodel", "saved_model")': Do(creates=("fcn8s_savedmodel",), slow=True),
    'export(model, "fcn8s.tflite", quantize="float16")': Do(creates=("fcn8s.tflite",)),
    'export(model, "fcn8s_int8.tflite", quantize="int8", representative_data="shapes")':
        Do(creates=("fcn8s_int8.tflite",)),
    'export(model, "fcn8s.onnx")': Do(creates=("fcn8s.onnx",)),
    'export(model, "fcn8s_voc.onnx", verify=Verification(data="VOCdevkit/VOC2012", num_images=8))':
        Do(creates=("fcn8s_voc.onnx", "fcn8s_voc.onnx.verify.json")),
    'export(model, "fcn8s_web", "web")': Do(creates=("fcn8s_web/index.html", "fcn8s_web/model.onnx")),
    'run = runner("fcn8s_int8.tflite")': Do(),
    "images = np.zeros((2, 240, 320, 3), np.uint8)": Do(),
    "labels, scores = run(images)": Do(check=_py_exports),
    'class_names = read_metadata("fcn8s_int8.tflite")["class_names"]': Do(),
    # docs/full-resolution.md: `model` and `image` are the page's placeholders (GIVEN)
    'p = Predictor("fcn8s.onnx", max_size=0, tile="auto")':
        Do(models={"fcn8s.onnx": "voc.onnx"}, slow=True),
    'p = Predictor(model, tta="flip,scales=0.5,0.75,1,1.25,1.5")': Do(),
    'p = Predictor(model, refine="crf")': Do(),
    "labels, scores = p.predict(image)": Do(check=_py_full_resolution),
}

# The placeholders a page's Python blocks use without defining them: a model (the "voc" kind,
# loaded) and a photo (uint8 (H, W, 3)).
GIVEN = {"docs/full-resolution.md": ("model", "image")}

# The model files lines read, built at width 0.125 with non-zero score layers. A kind ending in
# `.onnx` is that kind's model exported to ONNX (verified, as `export` does).
MODELS = {
    "voc": dict(backbone="vgg16", head="8s", num_classes=21),
    "own": dict(backbone="vgg16", head="8s", num_classes=4, class_names=[n for n, _ in CAMVID_LIKE],
                palette=[list(c) for _, c in CAMVID_LIKE]),
}


# ----------------------------------------------------------------------------- parsing
def _scan(line):
    """(index of a trailing `# comment` or None, whether a quote is left open) of `line`."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return i, False
    return None, quote is not None


def _strip_comment(line):
    """`line` without a trailing `# comment` (a `#` inside quotes is kept)."""
    at, _ = _scan(line)
    return (line if at is None else line[:at]).rstrip()


def blocks(text):
    """The fenced blocks of a Markdown text: [(language, first code line number, [lines])]."""
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines):
        m = re.match(r"^```\s*(\S*)\s*$", lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            found.append((m.group(1).lower(), i + 2, lines[i + 1:j]))
            i = j
        i += 1
    return found


def page_blocks():
    """[(page, language, first line number, [lines])] of every followed page."""
    return [(page, *block) for page in PAGES
            for block in blocks((ROOT / page).read_text(encoding="utf-8"))]


def _logical_lines(lines, start):
    """[(line number, command)] of a shell block: comment lines dropped, `\\` continuations
    and quotes that span lines joined, trailing comments stripped."""
    out, buf, first = [], "", None
    for k, line in enumerate(lines):
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        first = start + k if first is None else first
        buf = f"{buf} {line.strip()}" if buf else line.strip()
        if buf.endswith("\\"):
            buf = buf[:-1].rstrip()
            continue
        if _scan(buf)[1]:
            continue
        out.append((first, _strip_comment(buf)))
        buf, first = "", None
    assert not buf, f"a shell block ending at line {start + len(lines)} leaves {buf!r} open"
    return out


def shell_commands():
    """[(page, line number, command)] of the shell blocks, `&&` chains split."""
    out = []
    for page, lang, start, lines in page_blocks():
        if lang in SHELL_LANGS:
            for n, line in _logical_lines(lines, start):
                out += [(page, n, " ".join(cmd.split())) for cmd in line.split("&&") if cmd.strip()]
    return out


def python_blocks():
    """[(page, line number, [(line number, code line)])] of the ```python blocks."""
    return [(page, start, [(start + k, line) for k, line in enumerate(lines)])
            for page, lang, start, lines in page_blocks() if lang == "python"]


def _is_import(code):
    return re.match(r"^(import \w|from [\w.]+ import )", code) is not None


def _block_entries(lines):
    """[(line number, stripped code, Do or None)] of a Python block's non-import lines."""
    out = []
    for n, line in lines:
        key = _strip_comment(line).strip()
        if key and not _is_import(key):
            out.append((n, key, PY.get(key)))
    return out


def _marks(xfail, slow):
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return marks + ([pytest.mark.slow] if slow else [])


# ----------------------------------------------------------------------------- fixtures
def _workspace(path):
    """The stand-ins every documented line may name, in `path`."""
    make_tiny_voc(str(path / "VOCdevkit" / "VOC2012"))
    make_folder_pair(path, [f"train/t{i}" for i in range(6)] + ["val/v0", "val/v1"])
    write_class_dict(path / "class_dict.csv")
    photos = path / "photos"
    photos.mkdir()
    for src in sorted((path / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))[:2]:
        shutil.copy(src, photos / src.name)
    return path


INPUTS = ("VOCdevkit", "photos", "keras_home", "images", "masks", "class_dict.csv")


@pytest.fixture(scope="session")
def model_files(tmp_path_factory):
    """A function kind -> path of that kind's model file, made once per session."""
    folder, made = tmp_path_factory.mktemp("readme_models"), {}

    def get(kind):
        if kind not in made:
            if kind.endswith(".onnx"):
                model = keras.saving.load_model(get(kind[:-len(".onnx")]), compile=False)
                made[kind] = folder / kind
                fcn_keras.export.export(model, str(made[kind]))
            else:
                keras.utils.set_random_seed(0)
                model = random_scores(fcn_keras.build(**MODELS[kind], width=0.125))
                made[kind] = folder / f"{kind}.keras"
                model.save(made[kind])
        return made[kind]
    return get


def _prepare(folder, do, model_files):
    """`folder` with the stand-ins and the model files `do` reads; returns their paths."""
    _workspace(folder)
    for rel, kind in do.models.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_files(kind), folder / rel)
    return set(do.models)


def _not_ignored(folder, inputs=()):
    """The files under `folder` (but the stand-ins and `inputs`) that git would not ignore in
    the checkout: a documented command run in the repository root must leave `git status`
    clean."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*")
                   if p.is_file() and p.relative_to(folder).parts[0] not in INPUTS
                   and str(p.relative_to(folder)) not in inputs)
    run = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT,
                         input="\n".join(files), capture_output=True, text=True)
    return sorted(set(files) - set(run.stdout.split("\n")))


# ----------------------------------------------------------------------------- the tests
def test_every_block_is_run_or_shown():
    """Shell and Python blocks run; README.md holds no block of another kind (its commands
    must run), the docs pages may show output (```text or unmarked)."""
    kinds = {lang for page, lang, _, _ in page_blocks() if page == "README.md"}
    assert kinds <= set(SHELL_LANGS) | {"python"}, (
        f"README.md has fenced blocks of kind {sorted(kinds - set(SHELL_LANGS) - {'python'})}: "
        f"mark commands ```bash or ```python so tests/test_readme.py runs them")


def test_links_lead_to_files():
    """Every relative link and picture of the followed pages names a file of the checkout
    (the README's sections moved to docs/: a link that lost its target shows here)."""
    broken = []
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            path = target.split("#")[0]
            if path and not re.match(r"^[a-z]+:", path) and not (ROOT / page).parent.joinpath(path).exists():
                broken.append(f"{page}: {target}")
    assert not broken, f"links to nothing: {broken}"


def test_tables_have_no_stale_entries():
    cmds = {cmd for _, _, cmd in shell_commands()}
    code = {key for _, _, lines in python_blocks() for _, key, _ in _block_entries(lines)}
    stale = sorted(set(CLI) - cmds) + sorted(set(PY) - code)
    assert not stale, f"entries for lines the documentation no longer shows: {stale}"


def test_every_row_checks_something():
    """A row whose only check is 'no exception' cannot fail: every command line that runs
    names what it writes or checks what it printed, and so does every Python block."""
    idle = [cmd for cmd, do in CLI.items() if not do.skip and not (do.creates or do.check)]
    for page, start, lines in python_blocks():
        dos = [do for _, _, do in _block_entries(lines) if do and not do.skip]
        if dos and not any(do.creates or do.check for do in dos):
            idle.append(f"{page} block at line {start}")
    assert not idle, f"rows with nothing checked: {idle}"


def _cli_params():
    first, params = {}, []
    for page, n, cmd in shell_commands():
        do = CLI.get(cmd)
        if cmd in first and do is not None:  # e.g. `fcn-keras demo` twice: it would refuse
            do = Do(skip=f"the same command as {first[cmd]}")  # its own output
        first.setdefault(cmd, f"{page} line {n}")
        params.append(pytest.param(page, n, cmd, do, id=f"{page}-{cmd[:100]}",
                                   marks=_marks(do and do.xfail, do and do.slow)))
    return params


@pytest.mark.parametrize("page,line,cmd,do", _cli_params())
def test_documented_command(tmp_path, request, model_files, page, line, cmd, do):
    where = f"{page} line {line}"
    assert do is not None, (f"{where}: {cmd!r} is not in tests/test_readme.py's CLI table: add "
                            f"how the test runs it (or why it cannot)")
    if do.skip:
        pytest.skip(f"{where}: {do.skip}")
    argv = cmd.split()
    assert argv[0] == "fcn-keras", f"{where}: only fcn-keras lines can run: {cmd!r}"
    args = (*argv[1:], *do.extra)
    inputs = set()
    if do.fixture:
        folder, ran, run = request.getfixturevalue(do.fixture)
        assert tuple(ran) == args, f"{where}: {do.fixture} runs {ran}, not {args}"
    else:
        folder = tmp_path
        inputs = _prepare(folder, do, model_files)
        run = fcn_keras_cli(*args, cwd=folder, timeout=600,
                            env={"KERAS_HOME": str(folder / "keras_home")})
    assert run.returncode == 0, (f"{where}: {cmd} {' '.join(do.extra)} exited "
                                 f"{run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    for path in do.creates:
        assert (folder / path).exists(), f"{where}: {cmd} did not write {path}"
    if do.check:
        do.check(run, folder)
    assert not _not_ignored(folder, inputs), f"{where}: {cmd} would leave these in the checkout"


def _py_params():
    params = []
    for page, start, lines in python_blocks():
        dos = [do for _, _, do in _block_entries(lines) if do]
        params.append(pytest.param(page, start, lines, id=f"{page}-L{start}-python",
                                   marks=_marks(next((d.xfail for d in dos if d.xfail), None),
                                                any(d.slow for d in dos))))
    return params


@pytest.mark.parametrize("page,start,lines", _py_params())
def test_documented_python(tmp_path, monkeypatch, request, capsys, model_files, page, start, lines):
    code, unknown, dos = [], [], []
    for n, line in lines:
        key = _strip_comment(line).strip()
        do = PY.get(key)
        if not key or _is_import(key):
            code.append(line)
        elif do is None:
            unknown.append(f"line {n}: {key}")
        elif do.skip:
            code.append(f"pass  # skipped: {do.skip}")
        else:
            code.append(line if do.code is None else do.code)
            dos.append(do)
    assert not unknown, (f"{page}: the python block at line {start} has lines tests/test_readme.py's "
                         f"PY table does not know (add how the test runs them): {unknown}")
    inputs = _prepare(tmp_path, Do(models={k: v for do in dos for k, v in do.models.items()}),
                      model_files)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    if any("TFDS_DIR" in line for line in code):
        namespace["TFDS_DIR"] = request.getfixturevalue("tiny_pets")[0]
    if "model" in GIVEN.get(page, ()):
        namespace["model"] = keras.saving.load_model(model_files("voc"), compile=False)
    if "image" in GIVEN.get(page, ()):
        photo = sorted((tmp_path / "photos").iterdir())[0]
        namespace["image"] = np.asarray(Image.open(photo).convert("RGB"))
    source = "\n" * (start - 1) + "\n".join(code)  # tracebacks give the page's line numbers
    exec(compile(source, page, "exec"), namespace)
    printed = capsys.readouterr().out
    for do in dos:
        for path in do.creates:
            assert os.path.exists(path), f"{page}: the block at line {start} did not write {path}"
        if do.check:
            do.check(namespace, tmp_path, printed)
    assert not _not_ignored(tmp_path, inputs), f"{page}'s snippets would leave these in the checkout"


def test_setup_is_two_commands_demo_first_without_test_extra():
    """The set-up: the first command installs what the demo needs (the package without
    extras; the page's ONNX Runtime Web is fetched on first use) and runs it; the second
    installs the test extra and runs the tests, and `.ci/run` runs that second line verbatim."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Set-up"):]
    lang, _, lines = next(b for b in blocks(section) if b[0] in SHELL_LANGS)
    demo, tests = [_strip_comment(line) for line in lines if line.strip()]
    steps = [" ".join(s.split()) for s in demo.split("&&")]
    assert steps == ["pip install -e .", "fcn-keras demo"], steps
    assert tests.startswith('pip install -e ".[test]" && ') and "pytest" in tests, tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci, ".ci/run must run the README's test command verbatim"
