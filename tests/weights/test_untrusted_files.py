"""Weights and `.keras` files from someone else: each hostile file is refused in one line naming
it, reads no other local file, and leaves the model as it was (issue: untrusted files)."""

import json
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

import fcn_keras
from fcn_keras.weights import WeightsMismatchError, mapping

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARCH = dict(backbone="alexnet", head="32s", num_classes=3, width=0.0625)


def _model():
    return fcn_keras.build(**ARCH)


def _values(model):
    """{layer: [arrays]} of every weight layer of `model`, as `save_converted` stores them."""
    return {name: [np.asarray(w) for w in layer.get_weights()]
            for name, layer in mapping.weight_layers(model).items() if layer.weights}


def _converted(path, values, edit=None):
    """A converted-weights file of `values`; `edit(f)` changes it before it is closed."""
    with h5py.File(path, "w") as f:
        f.attrs["fcn_keras_converted"] = mapping.CONVERTED_FORMAT
        for name, arrays in values.items():
            group = f.create_group(name)
            for i, a in enumerate(arrays):
                if edit is None or not edit(f, group, i, a):
                    group.create_dataset(str(i), data=a)
    return str(path)


@pytest.fixture()
def secret(tmp_path):
    """A local file the hostile files point at: 16 KB of float32 ones."""
    path = tmp_path / "secret.bin"
    path.write_bytes(np.ones(4096, np.float32).tobytes())
    return str(path)


def _loads_refused(path, match, one_line=True):
    model = _model()
    before = [np.asarray(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match=match) as err:
        fcn_keras.weights.load(model, path)
    assert path in str(err.value) and ("\n" not in str(err.value) or not one_line)
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(np.asarray(w), b)
    return str(err.value)


def test_external_storage_virtual_datasets_and_links_are_refused(tmp_path, secret):
    values = _values(_model())
    first = next(iter(values))

    def external(f, group, i, a):  # the first kernel's bytes come from the secret file
        if group.name.strip("/") != first or i != 0:
            return False
        group.create_dataset(str(i), shape=a.shape, dtype=a.dtype, external=[(secret, 0, a.nbytes)])
        return True

    _loads_refused(_converted(tmp_path / "external.h5", values, external), "external file")

    def virtual(f, group, i, a):
        if group.name.strip("/") != first or i != 0:
            return False
        layout = h5py.VirtualLayout(shape=a.shape, dtype=a.dtype)
        layout[...] = h5py.VirtualSource(secret, "data", shape=a.shape)
        group.create_virtual_dataset(str(i), layout)
        return True

    _loads_refused(_converted(tmp_path / "virtual.h5", values, virtual), "virtual")

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["k"] = values[first][0]

    def linked(kind):
        def edit(f, group, i, a):
            if group.name.strip("/") != first or i != 0:
                return False
            f.create_dataset("/hidden", data=a)
            group[str(i)] = h5py.SoftLink("/hidden") if kind == "soft" else h5py.ExternalLink(str(other), "k")
            return True
        return edit

    _loads_refused(_converted(tmp_path / "soft.h5", values, linked("soft")), "SoftLink")
    _loads_refused(_converted(tmp_path / "extlink.h5", values, linked("external")), "ExternalLink")


def test_a_converted_file_must_cover_every_layer(tmp_path):
    values = _values(_model())
    partial = {k: v for k, v in values.items() if k in ("conv1", "score_fr")}
    message = _loads_refused(_converted(tmp_path / "partial.h5", partial), "not in the file", one_line=False)
    assert "fc6" in message


def test_nan_and_inf_weights_are_refused_by_layer(tmp_path):
    values = _values(_model())
    values["fc7"][1] = np.full_like(values["fc7"][1], np.nan)
    assert "'fc7'" in _loads_refused(_converted(tmp_path / "nan.h5", values), "NaN or Inf")
    # the same through Keras' own loader (.weights.h5)
    model = _model()
    model.get_layer("conv1").bias.assign(np.full((model.get_layer("conv1").bias.shape[0],), np.inf, np.float32))
    model.save_weights(tmp_path / "inf.weights.h5")
    assert "conv1" in _loads_refused(str(tmp_path / "inf.weights.h5"), "NaN or Inf")


def test_damaged_h5_files_are_named(tmp_path):
    (tmp_path / "empty.weights.h5").write_bytes(b"")
    _loads_refused(str(tmp_path / "empty.weights.h5"), "empty")
    (tmp_path / "random.h5").write_bytes(os.urandom(4000))
    _loads_refused(str(tmp_path / "random.h5"), "not an HDF5")
    vgg = tmp_path / "vgg16_missing_groups.h5"
    with h5py.File(vgg, "w") as f:
        f.attrs["layer_names"] = [b"block1_conv1", b"block1_conv2"]
        f.create_group("block1_conv1").attrs["weight_names"] = [b"block1_conv1/kernel:0"]
    model = fcn_keras.build("vgg16", "32s", num_classes=3, width=0.0625)
    with pytest.raises(ValueError, match="vgg16_missing_groups.h5") as err:
        fcn_keras.weights.load(model, str(vgg))
    assert "\n" not in str(err.value)
    values = _values(_model())
    broken = _converted(tmp_path / "missing.h5", values, lambda f, g, i, a: g.name == "/conv1" and i == 0)
    _loads_refused(broken, "damaged")


def test_cli_refuses_external_storage_in_one_line(tmp_path, secret):
    values = _values(_model())

    def external(f, group, i, a):
        if group.name != "/conv1" or i != 0:
            return False
        group.create_dataset("0", shape=a.shape, dtype=a.dtype, external=[(secret, 0, a.nbytes)])
        return True

    evil = _converted(tmp_path / "evil.h5", values, external)
    env = dict(os.environ, PYTHONPATH=ROOT)
    image = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    result = subprocess.run([sys.executable, "-m", "fcn_keras.cli", "predict", str(image), "--weights", evil,
                             "--backbone", "alexnet", "--head", "32s", "--num-classes", "3", "--width", "0.0625",
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "evil.h5" in result.stderr, result.stderr
    assert "external file" in result.stderr and not (tmp_path / "out" / "a.png_labels.png").exists()


# --------------------------------------------------------------------------- .keras files

def test_build_with_an_empty_or_truncated_keras_file_names_it(tmp_path):
    good = tmp_path / "good.keras"
    _model().save(good)
    (tmp_path / "empty.keras").write_bytes(b"")
    (tmp_path / "cut.keras").write_bytes(good.read_bytes()[:3000])
    for name, match in (("empty.keras", "empty"), ("cut.keras", "not a complete .keras")):
        with pytest.raises(ValueError, match=match) as err:
            fcn_keras.build(**ARCH, weights=str(tmp_path / name))
        assert name in str(err.value)


def test_weights_of_another_architecture_one_short_line(tmp_path):
    path = tmp_path / "alexnet.weights.h5"
    _model().save_weights(path)
    for other in (dict(ARCH, width=0.125), dict(ARCH, backbone="vgg16")):
        with pytest.raises(WeightsMismatchError) as err:
            fcn_keras.build(**other, weights=str(path))
        text = str(err.value)
        assert len(text) < 400 and "\n" not in text, text
        assert str(path) in text and "the file has shape (11, 11, 3, 6)" in text and "the model needs (" in text


def _rewrite_config(src, dst, change):
    """A copy of the .keras archive `src` with config.json changed by `change(config) -> text`."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for item in a.infolist():
            data = a.read(item)
            if item.filename == "config.json":
                data = change(json.loads(data)).encode()
            b.writestr(item, data)
    return str(dst)


def test_a_keras_config_that_declares_more_than_its_weights_is_refused_before_building(tmp_path):
    good = tmp_path / "good.keras"
    _model().save(good)

    def wide(config):
        config["config"]["width"] = 4
        return json.dumps(config)

    from fcn_keras.loading import load_model

    with pytest.raises(ValueError, match=r"width=4 .*first convolution") as err:
        load_model(_rewrite_config(good, tmp_path / "wide.keras", wide))
    assert "wide.keras" in str(err.value)

    def classes(config):
        config["config"]["num_classes"] = 200
        return json.dumps(config)

    with pytest.raises(ValueError, match="num_classes=200"):
        load_model(_rewrite_config(good, tmp_path / "classes.keras", classes))
    with pytest.raises(ValueError, match="config.json declares"):
        load_model(_rewrite_config(good, tmp_path / "padded.keras", lambda c: json.dumps(c) + " " * (5 * 2**20)))


def test_a_keras_file_naming_os_system_is_one_line(tmp_path):
    good = tmp_path / "good.keras"
    _model().save(good)

    def system(config):
        return json.dumps({"module": "os", "class_name": "system", "registered_name": None,
                           "config": {"command": "touch " + str(tmp_path / "pwned")}})

    from fcn_keras.loading import load_model

    with pytest.raises(ValueError, match="evil.keras") as err:
        load_model(_rewrite_config(good, tmp_path / "evil.keras", system))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "pwned").exists()
