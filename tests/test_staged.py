"""Staged exact tiling of Keras FCNs (`fcn_keras.staged`, what `Predictor(model, tile=...)` uses
for a Keras model): the front in windows with small halos, the middle whole, the last
upsampling in row bands give the whole image's logits for every architecture, at any size;
halos one grid step short do not. Models of another structure fall back to window tiling."""

import keras
import numpy as np
import pytest

from fcn_keras.models import registry
from fcn_keras.predict import Predictor
from fcn_keras.staged import Staged, windows
from tests.test_tiling import RTOL, _image, _model, _rel


def _check(whole, tiled, image):
    labels, scores = whole.predict(image)
    tl, ts = tiled.predict(image)
    assert np.abs(scores).max() > 0.01  # a model that says something
    assert _rel(ts, scores) <= RTOL, image.shape
    top2 = np.sort(scores, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-4 * np.abs(scores).max()
    np.testing.assert_array_equal(tl[clear], labels[clear])


def _windows(staged, size, tile):
    """Front windows along one image axis of `size` pixels."""
    (top, bottom), _ = staged.pad
    return len(windows(size + top + bottom, tile, staged.spec))


@pytest.mark.parametrize("backbone,head", registry.architectures())
def test_staged_tiles_equal_the_whole_image(backbone, head):
    model = _model(backbone, head)
    whole, tiled = Predictor(model, max_size=0), Predictor(model, max_size=0, tile=128)
    assert tiled._staged is not None and tiled._staged.cut == 8
    for h, w in [(1, 1), (33, 47)]:
        _check(whole, tiled, _image(h, w))
    tiled._staged.band_bytes = 1 << 20  # bands of a few rows: the tail's band edges are crossed too
    assert _windows(tiled._staged, 700, 128) >= 3 and _windows(tiled._staged, 900, 128) >= 4
    _check(whole, tiled, _image(700, 900, seed=1))


def test_a_cut_at_stride_16_is_exact_too():
    model = _model("vgg16", "8s")
    staged = Staged(model, cut=16)
    assert staged.cut == 16 and max(j for j, _, _ in staged.cuts) == 16
    p = Predictor(model, max_size=0, tile=64)
    p._staged = staged
    _check(Predictor(model, max_size=0), p, _image(250, 330, seed=3))


def test_a_large_image_is_cut_coarser_under_the_budget():
    """tile="auto": when the middle would hold more than the budget (MIDDLE_COPIES times the cut
    maps), the staging cut at twice the stride takes over, and stays exact."""
    from fcn_keras.staged import MIDDLE_COPIES

    model = _model("vgg16", "8s")
    image = _image(250, 330, seed=6)
    staged = Staged.of(model)
    need = MIDDLE_COPIES * staged.maps_bytes(*image.shape[:2])
    assert staged.for_image(*image.shape[:2], need) is staged
    coarse = staged.for_image(*image.shape[:2], need - 1)
    assert coarse.cut == 16 and coarse.maps_bytes(*image.shape[:2]) < staged.maps_bytes(*image.shape[:2])
    assert staged.for_image(*image.shape[:2], need - 1) is coarse  # built once
    tiled = Predictor(model, max_size=0, tile="auto", tile_budget=int(need - 1))
    _check(Predictor(model, max_size=0), tiled, image)
    assert tiled._staged._coarser is not None


@pytest.mark.parametrize("backbone", ["alexnet", "vgg16"])
def test_a_halo_one_grid_step_short_is_not_exact(backbone):
    model = _model(backbone, "8s")
    image = _image(300, 420, seed=4)
    _, scores = Predictor(model, max_size=0).predict(image)
    p = Predictor(model, max_size=0, tile=64)
    _, exact = p.predict(image)
    assert _rel(exact, scores) <= RTOL
    short = Staged(model, shrink=p._staged.grid)  # each cut tensor's reach one step shorter
    assert short.spec.before < p._staged.spec.before
    p._staged, p.tile_spec = short, short.spec
    _, ts = p.predict(image)
    assert _rel(ts, scores) > 10 * RTOL


def test_the_halo_is_the_cut_tensors_reach_not_the_whole_nets():
    from fcn_keras import tiling

    model = _model("vgg16", "8s")
    staged = Staged.of(model)
    # conv4_3 (receptive field 92 px) and score_pool3 (pool3's 44 px), both of jump 8
    assert sorted((j, hi - lo + 1) for j, lo, hi in staged.cuts) == [(8, 44), (8, 92)]
    assert staged.spec.before == staged.spec.after == 56  # (92 - 1 + 8) / 2, up to the grid of 8
    assert staged.spec.before + staged.spec.after < tiling.tile_spec(model).before
    p = Predictor(model, max_size=0, tile="auto")
    assert p.tile == staged.spec.tile_for_budget(1 << 30)
    # a large image's cut tensors are taken out of the windows' budget
    assert staged.tile_for(100, 100, 1 << 30) == p.tile > staged.tile_for(3000, 4000, 1 << 30) >= 8


def test_windows_cover_an_axis_with_the_reach_as_overlap():
    staged = Staged.of(_model("alexnet", "8s"))
    spec, overlap = staged.spec, staged.spec.before + staged.spec.after
    for tile in (staged.grid, 5 * staged.grid):
        for size in range(1, 900, 13):
            axis = windows(size, tile, spec)
            assert axis[0][0] == 0 and axis[-1][1] == size
            assert all(s % spec.grid == 0 and e - s <= overlap + tile for s, e in axis)
            assert all(e0 - s1 == overlap for (_, e0), (s1, _) in zip(axis, axis[1:]))
            assert len({e - s for s, e in axis[:-1]}) <= 1


def test_other_structures_fall_back_to_window_tiling():
    model = _model("alexnet", "8s")
    plain = keras.Model(model.inputs, keras.layers.Activation("linear", name="logits")(model.outputs[0]))
    assert Staged.of(plain) is None
    whole, tiled = Predictor(plain, max_size=0), Predictor(plain, max_size=0, tile=64)
    assert tiled._staged is None and tiled.tile_spec.before == 224
    _check(whole, tiled, _image(130, 171))


def test_scores_go_to_scores_out_band_by_band():
    model = _model("alexnet", "8s")
    image = _image(90, 120, seed=5)
    _, scores = Predictor(model, max_size=0).predict(image)
    p = Predictor(model, max_size=0, tile=64)
    p._staged.band_bytes = 1 << 16
    out = np.zeros(scores.shape, np.float16)
    labels, got = p.predict(image, scores_out=out)
    assert got is out and _rel(out.astype(np.float32), scores) <= 1e-3
    assert len(list(p._staged.run(image, 64))) > 2  # several bands
