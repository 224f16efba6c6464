"""REST response sizes of a SavedModel's two signatures for one 500x375 photo.

    python benchmarks/serving_sizes.py [--model PATH.keras]

`serving_default` answers with per-pixel labels and float scores; `segment_bytes` with a palette
PNG label map and the class names (`fcn_keras.export.label_png`). Both are called in
TensorFlow on the same photo (scikit-image's `coffee.png` resized to 500x375, sent as a JPEG to
`segment_bytes` and as uint8 pixels to `serving_default`), and the bodies a TF Serving REST
server returns in its columnar format are written out as JSON: floats with 9 significant digits
(a float32's round trip), bytes as {"b64": ...}. Also printed: the raw tensor bytes (gRPC), and
how many pixels of the PNG equal `serving_default`'s labels.

Models: `--model` (a .keras file), else two: FCN-8s AlexNet (width 0.125, 4 classes) trained for
6 epochs on the synthetic shapes (about a minute; its labels have the blobs of a real
segmentation), and full-width-output FCN-8s VGG16 with 21 classes (width 0.25, random weights
seeded as in benchmarks/export_benchmark.py: the score tensor of a PASCAL VOC model, and a
fragmented label map, the PNG's bad case).
"""

import argparse
import base64
import importlib.util
import io
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZE = (500, 375)  # width, height: a PASCAL VOC photo's usual size


def photo():
    import skimage.data
    from PIL import Image

    image = Image.open(os.path.join(os.path.dirname(skimage.data.__file__), "coffee.png")).convert("RGB")
    return np.asarray(image.resize(SIZE, Image.BILINEAR), np.uint8)


def jpeg(rgb):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def json_floats(array):
    """A JSON list text of `array` with 9 significant digits per float (nested as the array)."""
    if array.ndim == 1:
        return "[" + ",".join(np.char.mod("%.9g", array)) + "]"
    return "[" + ",".join(json_floats(a) for a in array) + "]"


def trained_shapes():
    import keras

    import fcn_keras
    from fcn_keras import data, training

    keras.utils.set_random_seed(0)
    model = fcn_keras.build("alexnet", "8s", num_classes=4, width=0.125)
    model.compile(optimizer=keras.optimizers.Adam(3e-4))
    train_ds = data.pipeline(data.shapes("train", num_examples=256, image_size=64), batch_size=8,
                             training=True, seed=0, cache=True)
    training.train(model, train_ds, None, epochs=6, out_dir=tempfile.mkdtemp(), verbose=0)
    return model, list(data.SHAPES_CLASSES)


def random_voc():
    import fcn_keras

    spec = importlib.util.spec_from_file_location("export_helpers", os.path.join(ROOT, "tests", "export",
                                                                                 "export_helpers.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    model = helpers.randomize(fcn_keras.build("vgg16", "8s", num_classes=21, width=0.25), seed=0)
    return model, None


def measure(model, class_names, rgb, folder):
    import tensorflow as tf

    from fcn_keras.export import export

    path = os.path.join(folder, model.name)
    export(model, path, "saved_model", class_names=class_names, verify=False)
    loaded = tf.saved_model.load(path)
    dense = loaded.signatures["serving_default"](image=tf.constant(rgb[None]))
    labels, scores = dense["labels"].numpy(), dense["scores"].numpy()
    compact = loaded.signatures["segment_bytes"](image_bytes=tf.constant([jpeg(rgb)]))
    png = compact["label_png_bytes"].numpy()[0]
    names = [n.decode() for n in compact["class_names"].numpy()]
    from PIL import Image

    decoded = tf.io.decode_jpeg(jpeg(rgb)).numpy()  # the pixels segment_bytes saw
    same = loaded.signatures["serving_default"](image=tf.constant(decoded[None]))["labels"].numpy()[0]
    dense_body = ('{"outputs":{"labels":' + json.dumps(labels.tolist(), separators=(",", ":"))
                  + ',"scores":' + json_floats(scores) + "}}")
    compact_body = json.dumps({"outputs": {"label_png_bytes": [{"b64": base64.b64encode(png).decode()}],
                                           "class_names": names}}, separators=(",", ":"))
    return {
        "model": model.name, "classes": len(names), "photo": f"{SIZE[0]}x{SIZE[1]}",
        "serving_default_json_bytes": len(dense_body), "serving_default_tensor_bytes": labels.nbytes + scores.nbytes,
        "segment_bytes_json_bytes": len(compact_body), "segment_bytes_png_bytes": len(png),
        "labels_in_map": int(len(np.unique(np.asarray(Image.open(io.BytesIO(png)))))),
        "png_equals_serving_default": float(np.mean(np.asarray(Image.open(io.BytesIO(png))) == same)),
        "request_json_bytes": {"serving_default": len(json.dumps({"inputs": {"image": rgb[None].tolist()}},
                                                               separators=(",", ":"))),
                               "segment_bytes": len(json.dumps({"inputs": {"image_bytes": [
                                   {"b64": base64.b64encode(jpeg(rgb)).decode()}]}}, separators=(",", ":")))},
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="a .keras model (default: the two described in the docstring)")
    args = p.parse_args(argv)
    sys.path.insert(0, ROOT)
    rgb = photo()
    if args.model:
        from fcn_keras.models.saving import load_keras

        models = [(load_keras(args.model), None)]
    else:
        models = [trained_shapes(), random_voc()]
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(m, names, rgb, folder) for m, names in models]
    print(json.dumps(rows, indent=1))
    print("| model | classes | serving_default JSON | segment_bytes JSON (PNG) | ratio | PNG = labels |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['classes']} | {r['serving_default_json_bytes'] / 1e6:.1f} MB | "
              f"{r['segment_bytes_json_bytes'] / 1e3:.1f} KB ({r['segment_bytes_png_bytes'] / 1e3:.1f} KB) | "
              f"{r['serving_default_json_bytes'] / r['segment_bytes_json_bytes']:.0f}x | "
              f"{100 * r['png_equals_serving_default']:.2f}% |")


if __name__ == "__main__":
    main()
