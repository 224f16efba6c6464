"""How long reading and converting a released-size caffemodel takes (printed, not asserted).

    python benchmarks/weights_convert.py [--backbone vgg16 --head 8s]

Writes a full-width caffemodel with the model's own (random) weights to a temporary folder,
then times: read_caffemodel, the Caffe -> Keras mapping, the all-or-nothing assignment, writing
the converted cache and loading it back (what the second `build(weights=<zoo name>)` does).
"""

import argparse
import os
import tempfile
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--head", default="8s")
    args = parser.parse_args()

    import keras

    import fcn_keras
    from fcn_keras.weights.caffemodel import read_caffemodel, write_caffemodel
    from fcn_keras.weights.mapping import (assign, load_converted, save_converted, values_from_caffe,
                                           weight_layers)

    t = time.perf_counter()
    model = fcn_keras.build(args.backbone, args.head)
    print(f"build {args.backbone} {args.head}: {time.perf_counter() - t:.2f} s, {model.count_params():,} parameters")
    layers = []
    for name, layer in weight_layers(model).items():
        if isinstance(layer, keras.layers.Rescaling):
            continue
        kind = "Deconvolution" if isinstance(layer, keras.layers.Conv2DTranspose) else "Convolution"
        arrays = [w.numpy() for w in layer.weights]
        arrays[0] = arrays[0].transpose(3, 2, 0, 1)  # Keras -> Caffe (conv OIHW, deconv IOHW)
        layers.append((name, kind, arrays))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.caffemodel")
        t = time.perf_counter()
        write_caffemodel(path, layers)
        size = os.path.getsize(path) / 1e6
        print(f"write caffemodel: {time.perf_counter() - t:.2f} s ({size:,.0f} MB)")
        steps = {}
        t = time.perf_counter()
        net = read_caffemodel(path)
        steps["read_caffemodel"] = time.perf_counter() - t
        t = time.perf_counter()
        values = values_from_caffe(model, net)
        steps["map to Keras layouts"] = time.perf_counter() - t
        t = time.perf_counter()
        assign(model, values)
        steps["assign (all or nothing)"] = time.perf_counter() - t
        cache = os.path.join(tmp, "model.converted.h5")
        t = time.perf_counter()
        save_converted(cache, values, {"entry": "benchmark"})
        steps["write converted cache"] = time.perf_counter() - t
        t = time.perf_counter()
        again, _ = load_converted(cache)
        assign(model, again)
        steps["load converted cache + assign"] = time.perf_counter() - t
        for step, seconds in steps.items():
            print(f"{step}: {seconds:.2f} s")
        same = all(np.array_equal(a, b) for name in values for a, b in zip(values[name], again[name]))
        print(f"cache round trip identical: {same}")


if __name__ == "__main__":
    main()
