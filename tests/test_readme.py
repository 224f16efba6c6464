"""Every command README.md shows runs, so the documentation cannot drift from the code.

README.md's fenced blocks are parsed: each `fcn-keras ...` line of a ```bash (or plain) block
runs as a real subprocess of the installed console script, in README order, in one working
folder; each ```python block runs in its own. Both folders hold what the README names:
`VOCdevkit/VOC2012` (a tiny VOC-layout set: 40x56 images, labels 0..20 and 255), `photos/`
(two JPEGs), and `images/`, `masks/` and `class_dict.csv` (a CamVid-like folder pair with
train and val sub-folders and RGB colour masks). The command lines run as a user runs them (no TF_CPP_MIN_LOG_LEVEL of the
test's own). The tables below say how each line runs: as written, with arguments that make it
small and fast (`--width 0.125`, one short epoch), rewritten (a placeholder filled in, an
offline source of the same data), or skipped for a stated reason (a download, the test suite
itself). A line the tables do not know fails the test: a new README command needs an entry.
Known failures are marked xfail(strict=True) with the reason, so they flip to passing (and
the mark must go) once fixed. Some lines also check what they print and write, and the demo
line's run is tests/conftest.py's `demo_run` (one per session, shared with tests/test_cli.py).
"""

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import keras
import pytest

from .conftest import fcn_keras_cli, make_tiny_voc
from .data.conftest import make_folder_pair, write_class_dict

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FAST = ("--width", "0.125", "--epochs", "1", "--steps-per-epoch", "2")
DOWNLOAD = "needs a download (no internet in the test)"
# What a command must never print (progress bars and TensorFlow's start-up lines included).
NOISE = ("\x1b[", "\r", "oneDNN", "absl", "cpu_feature_guard", "Traceback", "Warning:")


@dataclass
class Do:
    """How one README line runs.

    Attributes:
        extra: arguments appended to a command line.
        code: the Python line run instead of the README's (None: as written).
        why: why it is rewritten.
        skip: why the line is not run (None: it runs).
        xfail: why the line is known to fail today (it must fail until fixed).
        creates: files or folders the line must leave in the working folder.
        check: a function (run, folder) with further checks of the run's
            `subprocess.CompletedProcess` and working folder.
        fixture: the session fixture that runs the line (for a run other tests check too):
            it returns (working folder, arguments after `fcn-keras`, CompletedProcess).
    """
    extra: tuple = ()
    code: str = None
    why: str = None
    skip: str = None
    xfail: str = None
    creates: tuple = field(default_factory=tuple)
    check: object = None
    fixture: str = None


def _quiet(run):
    for noise in NOISE:
        assert noise not in run.stdout + run.stderr, noise


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


def _check_data_check(run, folder):
    """The own-data example: both split folders read, the rare class named, no problem."""
    _quiet(run)
    assert "folders:train: 6 examples" in run.stdout and "folders:val: 2 examples" in run.stdout
    assert "sign" in run.stdout and "no problems found" in run.stdout


def _check_folder_evaluate(run, folder):
    _quiet(run)
    assert "mean IU" in run.stdout and "sign" in run.stdout


# Shell lines (comments stripped, `&&` chains split), as written in README.md.
CLI = {
    "pip install -e .": Do(skip="installs the package; this test runs inside that installation"),
    'pip install -e ".[test]"':
        Do(skip="installs the package and its test extra; this test runs inside that installation"),
    'pip install -e ".[cuda]"': Do(skip="installs TensorFlow's CUDA build (a GPU machine's install)"),
    'pip install -e ".[jax]" "jax[cuda12]>=0.10,<0.11"':
        Do(skip="installs JAX's CUDA build (a GPU machine's install)"),
    'pip install -e ".[torch]"': Do(skip="installs PyTorch (the test installation has it)"),
    "fcn-keras demo": Do(extra=("--quick",), creates=("demo_output",), fixture="demo_run"),
    "python -m pytest -q -p no:cacheprovider tests":
        Do(skip="runs the test suite this test belongs to"),
    "KERAS_BACKEND=jax python -m pytest -q -p no:cacheprovider tests/models":
        Do(skip="runs the test suite this test belongs to"),
    "fcn-keras train --backbone vgg16 --head 8s --data VOCdevkit/VOC2012 --schedule staged "
    "--out runs/voc": Do(extra=FAST, check=_check_train),
    "fcn-keras evaluate --model runs/voc/model.keras --data VOCdevkit/VOC2012 --split val "
    "--json scores.json": Do(creates=("scores.json",), check=_check_evaluate),
    "fcn-keras predict --model runs/voc/model.keras photos/ --out masks/":
        Do(creates=("masks",)),
    "fcn-keras export runs/voc/model.keras --format tflite --quantize float16 -o fcn8s.tflite":
        Do(creates=("fcn8s.tflite",)),
    "fcn-keras convert fcn8s-heavy-pascal.caffemodel --backbone vgg16 --head 8s -o fcn8s.keras":
        Do(skip="needs the paper's FCN-8s caffemodel (about 540 MB to download)"),
    "fcn-keras zoo": Do(),
    "fcn-keras data check folders:images,masks --colors class_dict.csv --plot runs/classes.png":
        Do(creates=("runs/classes.png",), check=_check_data_check),
    "fcn-keras train --data folders:images,masks --colors class_dict.csv --class-weights "
    "median_frequency --out runs/own": Do(extra=FAST, creates=("runs/own/model.keras",)),
    "fcn-keras evaluate --data folders:images,masks --colors class_dict.csv --model "
    "runs/own/model.keras": Do(check=_check_folder_evaluate),
    "fcn-keras serve demo_output/web":
        Do(skip="serves until Ctrl-C; tests/export/test_web.py runs it on the demo's web folder, "
                "opens the printed URL in Chromium and segments a photo there"),
}

# Python lines (trailing comments stripped), as written in README.md. Import lines run as
# written without an entry. Each block runs on its own (no names from elsewhere), in a folder
# holding the README's stand-ins (a tiny VOCdevkit/VOC2012, photos/).
PY = {
    'model = fcn_keras.build("vgg16", "8s", num_classes=21, weights="imagenet")':
        Do(code='model = fcn_keras.build("vgg16", "8s", num_classes=21, width=0.125)',
           why="the ImageNet weights are a download: the same net, built at width 0.125"),
    "model.compile()": Do(),
    'train = data.pipeline(data.from_directory("VOCdevkit/VOC2012", "train"), training=True)': Do(),
    "model.fit(train, epochs=2)": Do(code="model.fit(train, epochs=1)", why="one epoch is enough here"),
    'fcn_keras.export.export(model, "fcn8s.tflite", format="tflite")':
        Do(creates=("fcn8s.tflite",)),
    'fcn_keras.build(weights="voc-fcn8s")': Do(skip=DOWNLOAD),
    'fcn_keras.build("alexnet", "32s", weights="imagenet")': Do(skip=DOWNLOAD),
    'fcn_keras.build("vgg16", "8s", weights="fcn8s-heavy-pascal.caffemodel")':
        Do(skip="needs the paper's FCN-8s caffemodel (about 540 MB to download)"),
    "fcn_keras.list_models()": Do(),
    'train = data.pipeline(data.from_directory("VOCdevkit/VOC2012", "train"), batch_size=1, '
    'training=True)': Do(),
    'val = data.pipeline(data.from_directory("VOCdevkit/VOC2012", "val"))': Do(),
    'pets = data.from_tfds("oxford_iiit_pet", "train")':
        Do(code='pets = data.from_tfds("oxford_iiit_pet", "train", data_dir=TFDS_DIR, '
                'download=False)',
           why="TFDS cannot download here: it reads a copy TFDS prepared from local archives"),
    'toy = data.shapes("train")': Do(),
    "model.fit(train, validation_data=val, epochs=2)":
        Do(code="model.fit(train, validation_data=val, epochs=1)", why="one epoch is enough here"),
    "print(training.format_report(training.evaluate(model, val)))": Do(),
    'export(model, "fcn8s_savedmodel", "saved_model")': Do(creates=("fcn8s_savedmodel",)),
    'export(model, "fcn8s.tflite", quantize="float16")': Do(creates=("fcn8s.tflite",)),
    'export(model, "fcn8s_int8.tflite", quantize="int8", representative_data="shapes")':
        Do(creates=("fcn8s_int8.tflite",)),
    'export(model, "fcn8s.onnx")': Do(creates=("fcn8s.onnx",)),
    'export(model, "fcn8s_voc.onnx", verify=Verification(data="VOCdevkit/VOC2012", num_images=8))':
        Do(creates=("fcn8s_voc.onnx", "fcn8s_voc.onnx.verify.json")),
    'export(model, "fcn8s_web", "web")': Do(creates=("fcn8s_web/index.html", "fcn8s_web/model.onnx")),
    'run = runner("fcn8s_int8.tflite")': Do(),
    "images = np.zeros((2, 240, 320, 3), np.uint8)": Do(),
    "labels, scores = run(images)": Do(),
    'class_names = read_metadata("fcn8s_int8.tflite")["class_names"]': Do(),
}


def given(tfds_dir):
    """What a README snippet may take from outside itself: nothing but the TFDS copy the
    rewritten `from_tfds` line reads (every snippet imports and builds what it uses)."""
    return {"TFDS_DIR": tfds_dir}


# ----------------------------------------------------------------------------- README parsing
SHELL_LANGS = ("", "bash", "sh", "shell", "console")


def _strip_comment(line):
    """`line` without a trailing `# comment` (a `#` inside quotes is kept)."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def blocks(text=None):
    """README.md's fenced blocks: [(language, first code line number, [lines])]."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines()
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


def shell_commands():
    """[(line number, command)] of the shell blocks, `&&` chains split."""
    out = []
    for lang, start, lines in blocks():
        if lang in SHELL_LANGS:
            for k, line in enumerate(lines):
                for cmd in _strip_comment(line).split("&&"):
                    if cmd.strip():
                        out.append((start + k, " ".join(cmd.split())))
    return out


def python_blocks():
    """[(line number, [(line number, code line)])] of the ```python blocks."""
    return [(start, [(start + k, line) for k, line in enumerate(lines)])
            for lang, start, lines in blocks() if lang == "python"]


def _is_import(code):
    return re.match(r"^(import \w|from [\w.]+ import )", code) is not None


def _param(line, name, do):
    marks = [pytest.mark.xfail(strict=True, reason=do.xfail)] if do and do.xfail else []
    return pytest.param(line, name, do, id=f"L{line}-{name[:48]}", marks=marks)


# ----------------------------------------------------------------------------- fixtures
INPUTS = ("VOCdevkit", "photos", "keras_home", "images", "masks", "class_dict.csv")  # the stand-ins, the Keras cache


def _not_ignored(folder):
    """The files under `folder` (but the inputs) that git would not ignore in the checkout:
    a README command run in the repository root must leave `git status` clean."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*")
                   if p.is_file() and p.relative_to(folder).parts[0] not in INPUTS)
    run = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT,
                         input="\n".join(files), capture_output=True, text=True)
    return sorted(set(files) - set(run.stdout.split("\n")))


def _workspace(path):
    make_tiny_voc(str(path / "VOCdevkit" / "VOC2012"))
    make_folder_pair(path, [f"train/t{i}" for i in range(6)] + ["val/v0", "val/v1"])
    write_class_dict(path / "class_dict.csv")
    photos = path / "photos"
    photos.mkdir()
    for src in sorted((path / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))[:2]:
        shutil.copy(src, photos / src.name)
    return path


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    """The one working folder all README command lines run in, in order."""
    return _workspace(tmp_path_factory.mktemp("readme_cli"))


# ----------------------------------------------------------------------------- the tests
def test_every_block_is_a_known_kind():
    kinds = {lang for lang, _, _ in blocks()}
    assert kinds <= set(SHELL_LANGS) | {"python"}, (
        f"README.md has fenced blocks of kind {sorted(kinds - set(SHELL_LANGS) - {'python'})}: "
        f"teach tests/test_readme.py how to run them")


def test_tables_have_no_stale_entries():
    cmds = {cmd for _, cmd in shell_commands()}
    code = {_strip_comment(line).strip() for _, lines in python_blocks() for _, line in lines}
    stale = sorted(set(CLI) - cmds) + sorted(set(PY) - code)
    assert not stale, f"entries for lines README.md no longer shows: {stale}"


def _cli_params():
    first, params = {}, []
    for n, cmd in shell_commands():
        do = CLI.get(cmd)
        if cmd in first and do is not None:  # e.g. `fcn-keras demo` twice: it would refuse
            do = Do(skip=f"the same command as README.md line {first[cmd]}")  # its own output
        first.setdefault(cmd, n)
        params.append(_param(n, cmd, do))
    return params


@pytest.mark.parametrize("line,cmd,do", _cli_params())
def test_readme_command(cli_dir, request, line, cmd, do):
    assert do is not None, (f"README.md line {line}: {cmd!r} is not in tests/test_readme.py's "
                            f"CLI table: add how the test runs it (or why it cannot)")
    if do.skip:
        pytest.skip(f"README.md line {line}: {do.skip}")
    argv = cmd.split()
    assert argv[0] == "fcn-keras", f"README.md line {line}: only fcn-keras lines can run: {cmd!r}"
    args = (*argv[1:], *do.extra)
    if do.fixture:
        folder, ran, run = request.getfixturevalue(do.fixture)
        assert tuple(ran) == args, f"README.md line {line}: {do.fixture} runs {ran}, not {args}"
    else:
        folder = cli_dir
        run = fcn_keras_cli(*args, cwd=folder, timeout=600,
                            env={"KERAS_HOME": str(folder / "keras_home")})
    assert run.returncode == 0, (f"README.md line {line}: {cmd} {' '.join(do.extra)} exited "
                                 f"{run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    for path in do.creates:
        assert (folder / path).exists(), f"README.md line {line}: {cmd} did not write {path}"
    if do.check:
        do.check(run, folder)


@pytest.mark.parametrize("start,lines", [pytest.param(s, ls, id=f"L{s}-python")
                                         for s, ls in python_blocks()])
def test_readme_python(tmp_path, monkeypatch, tiny_pets, start, lines):
    monkeypatch.chdir(_workspace(tmp_path))
    code, unknown, creates = [], [], []
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
            creates += do.creates
    assert not unknown, (f"README.md python block at line {start} has lines tests/test_readme.py's "
                         f"PY table does not know (add how the test runs them): {unknown}")
    namespace = given(tiny_pets[0])
    source = "\n" * (start - 1) + "\n".join(code)  # tracebacks give README.md's line numbers
    exec(compile(source, "README.md", "exec"), namespace)
    for path in creates:
        assert os.path.exists(path), f"README.md block at line {start} did not write {path}"
    assert not _not_ignored(tmp_path), "README.md's snippets would leave these in the checkout"


def test_commands_leave_the_checkout_clean(cli_dir):
    """What the README's commands wrote (run before this test, in the same folder) is all
    ignored by git, so running them in the repository root leaves `git status` clean."""
    assert any(cli_dir.iterdir())
    assert not _not_ignored(cli_dir), "README.md's commands would leave these in the checkout"


def test_setup_is_two_commands_demo_first_without_test_extra():
    """The set-up: the first command installs what the demo needs (the package without
    extras; the page's ONNX Runtime Web is fetched on first use) and runs it; the second installs the test extra
    and runs the tests, and `.ci/run` runs that second line verbatim."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Set-up"):]
    lang, _, lines = next(b for b in blocks(section) if b[0] in SHELL_LANGS)
    demo, tests = [_strip_comment(line) for line in lines if line.strip()]
    steps = [" ".join(s.split()) for s in demo.split("&&")]
    assert steps == ["pip install -e .", "fcn-keras demo"], steps
    assert tests.startswith('pip install -e ".[test]" && ') and "pytest" in tests, tests
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci, ".ci/run must run the README's test command verbatim"
