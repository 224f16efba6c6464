"""The zoo table (zoo/README.md, `fcn-keras zoo`) and per-entry recipes, made from the zoo data.

    python -m fcn_keras.weights.zoo_docs zoo/            # rewrite zoo/README.md and zoo/*/README.md
    python -m fcn_keras.weights.zoo_docs --count-params  # rebuild every model, check NUM_PARAMS

tests/weights/test_zoo.py checks that the files in zoo/ are what this module renders.
"""

import argparse
import os
import sys

from fcn_keras.weights import zoo

# Parameters of each architecture at full width, counted from the built models
# (`--count-params` rebuilds them and fails when one differs).
NUM_PARAMS = {
    ("vgg16", "32s", 21): 136_152_917,
    ("vgg16", "16s", 21): 134_815_994,
    ("vgg16", "8s", 21): 134_489_759,
    ("vgg16", "8s-atonce", 21): 134_489_759,
    ("alexnet", "32s", 21): 58_704_590,
    ("vgg16", "32s", 60): 149_251_964,
    ("vgg16", "16s", 60): 138_281_144,
    ("vgg16", "8s", 60): 135_589_364,
    ("vgg16", "32s", 40): 140_978_024,
    ("vgg16", "32s", 33): 138_856_289,
    ("vgg16", "16s", 33): 135_545_234,
    ("vgg16", "8s", 33): 134_734_787,
    ("vgg16", None, None): 134_260_544,
    ("alexnet", None, None): 56_868_224,
    ("googlenet", None, None): 5_973_552,
}


METRIC_LABELS = {"mean_iu": "mean IU", "top1": "top-1 %", "top5": "top-5 %"}


def architecture_key(entry):
    return entry["backbone"], entry["head"], entry["num_classes"]


def count_params(key):
    """Builds the architecture (full width) and counts its parameters."""
    import fcn_keras

    backbone, head, num_classes = key
    if head is None:
        model = fcn_keras.build_backbone(backbone)
    else:
        model = fcn_keras.build(backbone, head, num_classes=num_classes)
    return model.count_params()


def _metrics_text(entry):
    parts = []
    for split, values in entry["metrics"].items():
        parts.append(f"{split}: " + ", ".join(f"{METRIC_LABELS.get(k, k)} {v}" for k, v in values.items()))
    return "; ".join(parts) or "not published"


def _arch_text(entry):
    if entry["kind"] == "backbone":
        return f"{entry['backbone']} backbone"
    return f"{entry['backbone']} FCN-{entry['head']}"


def _checksum_text(entry):
    checksum = entry["source"]["checksum"]
    return f"`{checksum[:14]}…`" if checksum else "none published"


def rows():
    out = []
    for entry in zoo.list_models():
        out.append({
            "name": entry["name"],
            "architecture": _arch_text(entry),
            "classes": entry["num_classes"] or "-",
            "params": NUM_PARAMS.get(architecture_key(entry)),
            "metrics": _metrics_text(entry),
            "checksum": _checksum_text(entry),
            "file": entry["source"]["filename"],
        })
    return out


def render_table():
    lines = ["| name | architecture | classes | parameters | reported (paper / source) | checksum | file |",
             "|---|---|---|---|---|---|---|"]
    for r in rows():
        params = f"{r['params']:,}" if r["params"] else "?"
        lines.append(f"| [{r['name']}]({r['name']}/README.md) | {r['architecture']} | {r['classes']} | {params} | "
                     f"{r['metrics']} | {r['checksum']} | `{r['file']}` |")
    return "\n".join(lines)


def render_index():
    unsupported = "\n".join(f"- **{name}**: {why}" for name, why in zoo.UNSUPPORTED.items())
    return f"""# The fcn_keras zoo

Pretrained weights for `fcn_keras.build(..., weights=<name>)`. Each entry is data in
`fcn_keras/weights/zoo.py`; this page and every recipe below are generated from it
(`python -m fcn_keras.weights.zoo_docs zoo/`; `tests/weights/test_zoo.py` checks they are current).
`fcn-keras zoo` prints the same table.

Files are downloaded once into `$KERAS_HOME/models/` (default `~/.keras/models/`) and checked
against the published checksum; the converted Keras weights are cached in
`$KERAS_HOME/models/fcn_keras/<name>.converted.h5`, so the second `build` is offline and fast.
Offline: put the file (its name is in the table) into `$KERAS_HOME/models/`, or pass its path
(`weights="/path/to/fcn8s-heavy-pascal.caffemodel"`); a path never needs the network.

Entries without a published checksum are not downloaded blindly: fetch the file yourself, or
call `fcn_keras.weights.fetch(name, file_hash="sha256:<hex>")` with a hash you trust.

{render_table()}

Parameters are counted from the built Keras models (full width). "Reported" numbers are the
authors' (reference README, mean IU on PASCAL VOC seg11valid / seg12test; BVLC model-zoo
readmes for the ImageNet nets), not re-measured here.

## Not supported

{unsupported}
"""


def render_recipe(entry):
    src = entry["source"]
    key = architecture_key(entry)
    params = NUM_PARAMS.get(key)
    if entry["kind"] == "backbone":
        usage = f'fcn_keras.build("{entry["backbone"]}", "32s", num_classes=21, weights="imagenet")'
        arch = f"{entry['backbone']} backbone (taps pool3 / pool4 / fc7), any head, any number of classes"
    else:
        usage = (f'fcn_keras.build("{entry["backbone"]}", "{entry["head"]}", num_classes={entry["num_classes"]}, '
                 f'weights="{entry["name"]}")')
        arch = f"{entry['backbone']} FCN-{entry['head']}, {entry['num_classes']} classes"
    classes = ", ".join(f"{i}: {c}" for i, c in enumerate(entry["classes"])) or "-"
    checksum = (f"`{src['checksum']}` (published in {src['checksum_source']})" if src["checksum"]
                else "none published: see below")
    pre = entry["preprocessing"]
    lines = [
        f"# {entry['name']}",
        "",
        "```python",
        "import fcn_keras",
        f"model = {usage}",
        "```",
        "",
        f"- Architecture: {arch}" + (f"; {params:,} parameters" if params else ""),
        f"- Data: {entry['dataset']}",
        f"- Classes (output channel: name): {classes}",
        f"- Source file: `{src['filename']}` from " + " or ".join(src["urls"]),
        f"- Checksum: {checksum}",
        f"- Reference: {src['reference']}",
        f"- Preprocessing: {pre['input']} (BGR mean {', '.join(str(m) for m in pre['bgr_mean'])})",
        f"- Reported: {_metrics_text(entry)}",
    ]
    if entry["rename"]:
        lines.append("- Conversion renames: " + ", ".join(f"{a} -> {b}" for a, b in entry["rename"].items()))
    if entry["ignore"]:
        lines.append("- Not loaded (layers of the file the model does not have): " + ", ".join(entry["ignore"]))
    if entry["notes"]:
        lines += ["", entry["notes"]]
    lines += [
        "",
        "Offline: download the file on another machine, then either put it at",
        f"`$KERAS_HOME/models/{src['filename']}` or pass its path as `weights=`. To write a Keras file:",
        "",
        "```",
        (f"fcn-keras convert {src['filename']} --backbone {entry['backbone']} --head {entry['head']} "
         f"-o {entry['name']}.keras") if entry["kind"] == "fcn" else
        f"fcn-keras convert {src['filename']} --backbone {entry['backbone']} --head 32s -o {entry['name']}-32s.keras",
        "```",
        "",
    ]
    return "\n".join(lines)


def expected_files():
    """{relative path under zoo/: text}."""
    files = {"README.md": render_index()}
    for entry in zoo.list_models():
        files[os.path.join(entry["name"], "README.md")] = render_recipe(entry)
    return files


def write(root):
    for rel, text in expected_files().items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", help="the zoo/ folder to write")
    parser.add_argument("--count-params", action="store_true", help="rebuild every model and check NUM_PARAMS")
    args = parser.parse_args(argv)
    status = 0
    if args.count_params:
        keys = sorted({architecture_key(e) for e in zoo.list_models()}, key=str)
        for key in keys:
            n = count_params(key)
            ok = NUM_PARAMS.get(key) == n
            status |= not ok
            print(f"{key}: {n:,}{'' if ok else f'  (NUM_PARAMS says {NUM_PARAMS.get(key)})'}")
    if args.root:
        write(args.root)
    return status


if __name__ == "__main__":
    sys.exit(main())
