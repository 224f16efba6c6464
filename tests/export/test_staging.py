"""An export killed with kill -9 leaves its hidden staging folder; a later export of the same
path removes it once no process holds it and it has been idle STALE_AFTER_S (not by pid: the
folder may be shared with another container). A live export's folder stays."""

import os
import subprocess
import sys
import time

import fcn_keras
from fcn_keras._io import STALE_AFTER_S, lock_name
from fcn_keras.export import export
from tests.weights.test_download import hold_locks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_EXPORT = """
import sys, fcn_keras
from fcn_keras.export import export
export(fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625), sys.argv[1], verify=False)
"""


def _hidden(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def _age(path, seconds):
    t = time.time() - seconds
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (t, t), follow_symlinks=False)
    os.utime(path, (t, t))


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(tmp_path):
    out = tmp_path / "m.onnx"
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-c", _EXPORT, str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not _hidden(tmp_path):
            assert proc.poll() is None and time.monotonic() < deadline, "the export ended without staging"
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no clean-up runs
        proc.wait()
    (killed,) = [n for n in _hidden(tmp_path) if not n.startswith(".lock-")]  # and its lock file
    assert not out.exists()
    with open(tmp_path / killed / "weights.bin", "wb") as f:  # what it had written (VGG16: 540 MB)
        f.write(os.urandom(1 << 16))
    _age(tmp_path / killed, STALE_AFTER_S + 60)

    live = tmp_path / ".tmp-4194000-0123abcd-m.onnx"  # another container's export, running
    fresh = tmp_path / ".tmp-4194001-0123abce-m.onnx"  # unlocked but recent: left alone too
    other = tmp_path / ".tmp-4194002-0123abcf-other.onnx"  # another file's: never touched
    for folder in (live, fresh, other):
        folder.mkdir()
    _age(live, STALE_AFTER_S + 60)
    _age(other, STALE_AFTER_S + 60)
    holder = hold_locks(live)
    try:
        export(fcn_keras.build("alexnet", "32s", num_classes=3, width=0.0625), str(out), verify=False)
        assert out.exists()
        assert _hidden(tmp_path) == sorted([live.name, os.path.basename(lock_name(live)), fresh.name, other.name])
    finally:
        holder.kill()
        holder.wait()
