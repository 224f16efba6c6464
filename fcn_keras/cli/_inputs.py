"""The image files a command line names: files and folders walked into (inputs, output names).

    find_images(["photos/", "extra.jpg"], skip="out/")   # [(path, name under --out), ...]
"""

import os

# What `fcn-keras predict` (and the demo) write beside each image: never taken as inputs.
OWN_OUTPUTS = ("_labels.png", "_overlay.png", "_panel.png")


def find_images(inputs, recursive=True, skip=None, skipped=None):
    """The image files named by `inputs`, with the output name each gets.

    Args:
        inputs: files and folders. A folder gives its image files (by extension,
            `fcn_keras.images.IMAGE_EXTENSIONS`), in subfolders too when `recursive`.
        recursive: search subfolders.
        skip: the output folder: never searched, and no input may lie inside it.
        skipped: a list that receives one line per thing left out (the output folder inside
            an input folder; this project's own outputs, `OWN_OUTPUTS`, found as inputs).

    Returns:
        [(path, relative name)]: a folder's files are named by their path below it
        ("sub/a.jpg"), a file given directly by its base name.

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: no images; two inputs that would get the same output name; an input
            inside the output folder `skip` (its outputs would be mixed with the inputs).
    """
    from fcn_keras.images import IMAGE_EXTENSIONS

    out, skip = skip, os.path.realpath(skip) if skip else None
    found, names, own = [], {}, []
    notes = skipped if skipped is not None else []
    for p in inputs:
        real_p = os.path.realpath(p)
        if skip and os.path.exists(p) and (real_p == skip or real_p.startswith(skip + os.sep)):
            raise ValueError(f"input {os.fspath(p)!r} is inside the output folder {os.fspath(out)!r}: the outputs "
                             "would be mixed with the inputs (and read as inputs next time); give "
                             "another --out")
        if os.path.isdir(p):
            items = []
            for root, dirs, files in os.walk(p):
                kept = []
                for d in sorted(dirs) if recursive else []:
                    if os.path.realpath(os.path.join(root, d)) != skip:
                        kept.append(d)
                    else:
                        notes.append(f"the output folder {os.path.join(root, d)} is inside the input "
                                     f"{os.fspath(p)}: its files are not read")
                dirs[:] = kept
                items += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
            items = [(f, os.path.relpath(f, p)) for f in items]
        elif os.path.isfile(p):
            items = [(p, os.path.basename(p))]
        else:
            raise FileNotFoundError(f"input {p!r} is neither a file nor a folder")
        for path, rel in items:
            if os.fspath(path).endswith(OWN_OUTPUTS):
                own.append(os.fspath(path))
                continue
            real = os.path.realpath(path)
            if rel in names and names[rel] != real:
                raise ValueError(f"{names[rel]} and {path} would both be written as {rel}*: give them in "
                                 "separate runs (or with different --out)")
            if rel not in names:
                names[rel] = real
                found.append((path, rel))
    if own:
        notes.append(f"{len(own)} files are this program's own outputs ({', '.join('*' + s for s in OWN_OUTPUTS)}), "
                     f"not read as images, e.g. {own[0]}")
    if not found:
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {list(map(os.fspath, inputs))}"
                         + (f" ({notes[-1]})" if notes else ""))
    return found
