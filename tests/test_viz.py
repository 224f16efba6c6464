"""fcn_keras.viz: panels legible at 1:1 (enlarged, titled, scored, void in the legend)."""

import numpy as np
import pytest
from PIL import Image

from fcn_keras import viz
from fcn_keras.conventions import voc_palette

NAMES = ["background", "circle", "square", "triangle"]
VOID = tuple(int(v) for v in voc_palette()[255])


def _example(h=40, w=56):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    truth = np.zeros((h, w), np.uint8)
    truth[10:30, 10:30] = 1
    truth[5:15, 35:50] = 2
    truth[:2] = 255
    pred = truth.copy()
    pred[:2] = 0
    pred[20:30, 10:30] = 3       # half the circle called triangle
    return image, truth, pred


def test_image_scores_are_the_papers_for_one_image():
    _, truth, pred = _example()
    s = viz.image_scores(truth, pred, 4)
    # by hand: IU per class over the scored (non-void) pixels
    keep = truth != 255
    ius = []
    for c in range(4):
        t, p = (truth == c) & keep, (pred == c) & keep
        if (t | p).any():
            ius.append((t & p).sum() / (t | p).sum())
    assert s["mean_iou"] == pytest.approx(np.mean(ius))
    assert s["pixel_accuracy"] == pytest.approx(((truth == pred) & keep).sum() / keep.sum())
    assert np.isnan(viz.image_scores(np.full((3, 3), 255), np.zeros((3, 3)), 4)["mean_iou"])


def test_panel_is_enlarged_titled_and_shows_each_column():
    image, truth, pred = _example()
    out = viz.panel(image, truth, pred, class_names=NAMES)
    k = 6  # 40 px tall -> enlarged 6x to reach 240 px
    assert out.dtype == np.uint8 and out.shape[0] >= 240 + 28
    # the truth and prediction columns are the coloured maps, each pixel a k x k block
    gap, top = 8, 28
    w = 56 * k
    truth_col = out[top:top + 40 * k, gap * 2 + w:gap * 2 + 2 * w]
    np.testing.assert_array_equal(truth_col, np.kron(viz.colorize(truth), np.ones((k, k, 1), np.uint8)))
    pred_col = out[top:top + 40 * k, gap * 3 + 2 * w:gap * 3 + 3 * w]
    np.testing.assert_array_equal(pred_col, np.kron(viz.colorize(pred), np.ones((k, k, 1), np.uint8)))
    # a title above each column, the score line below: dark text pixels in those bands
    for c in range(3):
        band = out[:top, gap + c * (w + gap):(c + 1) * (w + gap)]
        assert (band.max(-1) < 100).sum() > 20, c
    assert (out[top + 40 * k + gap:, :400].max(-1) < 100).sum() > 50
    # the legend, right of the columns, has the void colour (truth holds 255) and no class 9
    legend = out[top:, 3 * (w + gap) + gap:]
    assert (legend == VOID).all(-1).sum() > 100


def test_panel_without_truth_and_large_images_stay_1_to_1():
    image, _, pred = _example(300, 200)
    out = viz.panel(image, None, pred)
    assert out.shape[0] == 28 + 300 + 8 and out.shape[1] == 8 + 2 * (200 + 8)
    np.testing.assert_array_equal(out[28:328, 8:208], image)


def test_legend_lists_void_and_uses_the_given_palette():
    pal = np.array([[1, 2, 3], [250, 0, 0], [0, 250, 0], [0, 0, 250]], np.uint8)
    leg = viz.legend(NAMES, present=[0, 2, 255], palette=pal)
    colours = {tuple(c) for c in leg.reshape(-1, 3)}
    assert (1, 2, 3) in colours and (0, 250, 0) in colours and VOID in colours
    assert (250, 0, 0) not in colours
    assert leg.shape[0] == 3 * (16 + 6) + 6
    # ids past a short palette take the VOC colours (255 = void)
    np.testing.assert_array_equal(viz.colorize(np.array([[1, 255]]), pal)[0], [(250, 0, 0), VOID])


def test_label_png_keeps_indices_and_palette(tmp_path):
    _, truth, _ = _example()
    pal = np.array([[1, 2, 3], [250, 0, 0], [0, 250, 0], [0, 0, 250]], np.uint8)
    viz.save_label_png(truth, tmp_path / "t.png", palette=pal)
    im = Image.open(tmp_path / "t.png")
    assert im.mode == "P"
    np.testing.assert_array_equal(np.asarray(im), truth)
    np.testing.assert_array_equal(np.array(im.getpalette()[:12]).reshape(4, 3), pal)
    with pytest.raises(FileExistsError, match="t.png"):
        viz.save_label_png(truth, tmp_path / "t.png", overwrite=False)
    with pytest.raises(ValueError, match="palette"):
        viz.colorize(truth, np.zeros((4, 2)))
