"""Exact tiled inference (`fcn_keras.tiling`, `Predictor(tile=...)`): tiled logits equal the
whole image's on every architecture, at any size, borders included; tiles with a margin of
one grid step instead of the derived one, or off the grid, do not (the derived margin is a
bound: a trained net's effective reach is shorter than its receptive field)."""

import numpy as np
import pytest

from fcn_keras import tiling
from fcn_keras.models import registry
from fcn_keras.models.fcn import FCN
from fcn_keras.predict import Predictor
from tests.conftest import random_scores

RTOL = 1e-5  # of the largest logit


def _model(backbone, head, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return random_scores(FCN(backbone, head, num_classes=5, width=0.0625), seed)


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _tiled_scores(model, image, tile, spec):
    """Scores computed tile by tile with `spec` (maybe a deliberately wrong one)."""
    call = Predictor(model, max_size=0)
    out = np.zeros(image.shape[:2] + (5,), np.float32)
    for (y0, y1, x0, x1), (iy0, iy1, ix0, ix1) in tiling.plan(*image.shape[:2], tile, spec):
        s = call._scores(np.ascontiguousarray(image[iy0:iy1, ix0:ix1]))
        out[y0:y1, x0:x1] = s[y0 - iy0:y1 - iy0, x0 - ix0:x1 - ix0]
    return out


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


# AlexNet's heads in the fast tests; every backbone tiles in the two tests below too
@pytest.mark.parametrize("backbone,head", [pytest.param(b, h, marks=[pytest.mark.slow] if b != "alexnet" else [])
                                           for b, h in registry.architectures()])
def test_tiles_equal_the_whole_image(backbone, head):
    model = _model(backbone, head)
    whole, tiled = Predictor(model, max_size=0), Predictor(model, max_size=0, tile=64)
    for h, w in [(1, 1), (33, 47), (130, 171)]:
        image = _image(h, w)
        labels, scores = whole.predict(image)
        tl, ts = tiled.predict(image)
        assert np.abs(scores).max() > 0.01  # a model that says something
        assert _rel(ts, scores) <= RTOL, (h, w)
        top2 = np.sort(scores, -1)[..., -2:]
        clear = top2[..., 1] - top2[..., 0] > 1e-4 * np.abs(scores).max()
        np.testing.assert_array_equal(tl[clear], labels[clear])


def _larger_than_a_window(spec, tile, extra=(37, 101)):
    """An odd image size over one window (`tiling.plan`) on both axes: it is really split."""
    window = spec.before + tile + spec.after
    return window + extra[0], window + extra[1]


@pytest.mark.parametrize("backbone", registry.backbones())
def test_tiles_equal_the_whole_of_a_large_odd_image(backbone):
    head = registry.heads(backbone)[-1]
    model = _model(backbone, head)
    size = _larger_than_a_window(tiling.tile_spec(model), 64)
    image = _image(*size, seed=1)
    _, scores = Predictor(model, max_size=0).predict(image)
    tiled = Predictor(model, max_size=0, tile=64)
    assert len(list(tiling.plan(*size, 64, tiled.tile_spec))) >= 4
    _, ts = tiled.predict(image)
    assert _rel(ts, scores) <= RTOL


@pytest.mark.parametrize("backbone", [pytest.param(b, marks=[] if b == "alexnet" else [pytest.mark.slow])
                                      for b in registry.backbones()])  # slow: 8-14 s of CPU each
def test_a_short_margin_or_tiles_off_the_grid_are_not_exact(backbone):
    model = _model(backbone, "8s")
    spec = tiling.tile_spec(model)
    image = _image(*_larger_than_a_window(spec, 128), seed=2)
    _, scores = Predictor(model, max_size=0).predict(image)
    assert _rel(_tiled_scores(model, image, 128, spec), scores) <= RTOL
    short = tiling.TileSpec(spec.grid, spec.grid, spec.grid)
    assert _rel(_tiled_scores(model, image, 128, short), scores) > 10 * RTOL
    off_grid = tiling.TileSpec(spec.grid // 2, spec.before, spec.after)
    assert _rel(_tiled_scores(model, image, 112, off_grid), scores) > 10 * RTOL


def test_the_grid_comes_from_the_registry_and_the_margin_from_the_layers():
    for backbone, head in registry.architectures():
        spec = tiling.tile_spec(_model(backbone, head))
        assert spec.grid == 32
        assert spec.before % 32 == 0 and spec.after % 32 == 0
    # a deeper receptive field gives a larger margin: GoogLeNet's is wider than AlexNet's
    assert tiling.tile_spec_for("googlenet", "32s").before > tiling.tile_spec_for("alexnet", "32s").before


def test_auto_tile_follows_the_memory_budget():
    spec = tiling.tile_spec_for("vgg16", "8s")
    small, large = spec.tile_for_budget(256 << 20), spec.tile_for_budget(4 << 30)
    assert small % 32 == 0 and large % 32 == 0 and 32 <= small < large
    p = Predictor(_model("alexnet", "32s"), max_size=0, tile="auto", tile_budget=64 << 20)
    assert p.tile == p.tile_spec.tile_for_budget(64 << 20)


def test_resized_images_tile_too():
    model = _model("alexnet", "8s")
    image = _image(300, 500, seed=3)
    _, scores = Predictor(model, max_size=160).predict(image)
    _, ts = Predictor(model, max_size=160, tile=64).predict(image)
    assert ts.shape == scores.shape == (300, 500, 5)
    assert _rel(ts, scores) <= RTOL


def test_bad_tiles_are_refused_by_name():
    model = _model("alexnet", "32s")
    with pytest.raises(ValueError, match=r"multiple of 32.*tile=50"):
        Predictor(model, tile=50)
    with pytest.raises(ValueError, match=r"tile=-32"):
        Predictor(model, tile=-32)
    with pytest.raises(ValueError, match=r"tile='big'"):
        Predictor(model, tile="big")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An FCN-8s AlexNet (width 1/16, random score layers) as .keras, SavedModel, TFLite, ONNX."""
    from fcn_keras.export import export

    model = _model("alexnet", "8s", seed=4)
    root = tmp_path_factory.mktemp("tiling_exports")
    paths = {"keras": str(root / "m.keras")}
    model.save(paths["keras"])
    for fmt, name in (("saved_model", "m_saved_model"), ("tflite", "m.tflite"), ("onnx", "m.onnx")):
        paths[fmt] = str(root / name)
        export(model, paths[fmt], format=fmt)
    return paths


@pytest.mark.parametrize("fmt", ["keras", "saved_model", "tflite", "onnx"])
def test_every_artefact_tiles_exactly(exported, fmt):
    image = _image(490, 530, seed=5)  # over one 480-pixel window (32 + 2 x 224) on both axes
    _, scores = Predictor(exported[fmt], max_size=0).predict(image)
    p = Predictor(exported[fmt], max_size=0, tile=32)
    if fmt == "keras":  # a Keras model is tiled in stages (tests/test_staged.py)
        assert p._staged is not None
    else:  # artefacts: whole-net windows with the margin of their architecture
        want = tiling.tile_spec_for("alexnet", "8s")
        assert (p.tile_spec.grid, p.tile_spec.before, p.tile_spec.after) == (want.grid, want.before, want.after)
    _, ts = p.predict(image)
    assert _rel(ts, scores) <= RTOL, fmt


def test_predict_command_tiles(exported, tmp_path):
    from PIL import Image

    from tests.conftest import fcn_keras_cli

    Image.fromarray(_image(150, 170, seed=6)).save(tmp_path / "a.png")
    outs = {}
    for tile in (None, "64"):
        out = tmp_path / f"out_{tile}"
        args = ["predict", str(tmp_path / "a.png"), "--model", exported["onnx"], "--out", str(out),
                "--max-size", "0", "--save-scores"] + (["--tile", tile] if tile else [])
        run = fcn_keras_cli(*args, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        outs[tile] = np.load(out / "a.png_scores.npy").astype(np.float32)
        if tile:
            assert "tiles of 64x64 px" in run.stdout
    # float16 files: the tolerance of float16 rounding
    assert _rel(outs["64"], outs[None]) <= 1e-3
    bad = fcn_keras_cli("predict", str(tmp_path / "a.png"), "--model", exported["onnx"], "--out",
                        str(tmp_path / "bad"), "--tile", "0", timeout=120)
    assert bad.returncode == 2 and "--tile" in bad.stderr and "Traceback" not in bad.stderr


def test_the_plan_covers_each_pixel_once_with_few_window_shapes():
    """Cores partition the image; every window starts on the grid and carries its margins (or
    the true edge); along an axis longer than a window there are two window lengths only, the
    window's and the edge window's, which depends only on the size modulo the grid."""
    spec = tiling.TileSpec(32, 64, 96)
    for tile in (32, 96):
        window = spec.before + tile + spec.after
        for n in range(1, 700, 7):
            axis = [(y0, y1, iy0, iy1) for (y0, y1, _, _), (iy0, iy1, _, _) in tiling.plan(n, 1, tile, spec)]
            assert [a[0] for a in axis] == [0] + [a[1] for a in axis[:-1]] and axis[-1][1] == n
            for y0, y1, iy0, iy1 in axis:
                assert iy0 % 32 == 0 and 0 <= iy0 and iy1 <= n
                assert iy0 == 0 or iy0 <= y0 - spec.before
                assert iy1 == n or iy1 >= y1 + spec.after
            lengths = {iy1 - iy0 for _, _, iy0, iy1 in axis}
            edge = window - 32 + n % 32 if n % 32 else window
            assert lengths == {n} if n <= window else lengths <= {window, edge}
