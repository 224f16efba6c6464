"""Colour tables: which RGB colour of a colour-coded mask is which class.

A table is read from a dict, a CSV or JSON file, or the name `"voc"`, and becomes a
`ColorTable`: `colors` (K, 3) uint8, `labels` (K,) the class of each colour (255 = ignore),
and the class names. `ColorTable.to_labels(rgb, where)` turns an `(H, W, 3)` mask into class
indices; a colour not in the table is a `DataError` naming the file, the colour and its pixel
count (or label 255 with `unknown_color="ignore"`).

Accepted forms::

    {(128, 64, 128): 0, (0, 0, 0): 255}        dict: colour -> class index (255 = ignore)
    {(128, 64, 128): "road", (0, 0, 0): "sky"}  dict: colour -> class name (classes in order)
    class_dict.csv                              CamVid's `name,r,g,b` lines (header optional;
                                                an `id` / `index` column sets the class)
    colors.json                                 {"road": [128, 64, 128], ...} or a list of
                                                {"name": ..., "color": [r, g, b]} (or "r", "g",
                                                "b"; optional "id") or [name, r, g, b] rows
    "voc"                                       the PASCAL VOC palette: 21 classes, cream
                                                (224, 224, 192) = 255 (void)
"""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from fcn_keras.conventions import IGNORE_LABEL, VOC_CLASSES, voc_palette

from .errors import DataError

#: A colour table file larger than this is refused (a table is a few lines).
MAX_TABLE_BYTES = 1 << 20
#: A mask with no more than this share of its pixels in unknown colours is "a few edge pixels".
EDGE_SHARE = 0.05


class ColorTable:
    """Colours to class indices.

    Args:
        colors: (K, 3) RGB values 0..255, all different.
        labels: (K,) the class of each colour: 0..num_classes-1, or 255 (ignore).
        class_names: the names of classes 0..num_classes-1.
        unknown_color: "error" (a colour not in the table fails naming it) or "ignore"
            (such pixels become 255).
        name: where the table came from, for messages.
    """

    def __init__(self, colors, labels, class_names, unknown_color="error", name="colors"):
        if unknown_color not in ("error", "ignore"):
            raise ValueError(f"`unknown_color` must be 'error' or 'ignore'. "
                             f"Received: unknown_color={unknown_color!r}")
        self.colors = np.asarray(colors, np.int64).reshape(-1, 3)
        self.labels = np.asarray(labels, np.int64).reshape(-1)
        self.class_names = tuple(str(n) for n in class_names)
        self.num_classes = len(self.class_names)
        self.unknown_color = unknown_color
        self.name = name
        keys = _keys(self.colors)
        uniq, counts = np.unique(keys, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"{name}: each colour must appear once in the table. Received: "
                             f"{_rgb(uniq[counts > 1][0])} {int(counts.max())} times")
        bad = (self.labels != IGNORE_LABEL) & ((self.labels < 0) | (self.labels >= self.num_classes))
        if bad.any():
            raise ValueError(f"{name}: each colour's class must be 0..{self.num_classes - 1} or "
                             f"{IGNORE_LABEL} (ignore). Received: class {int(self.labels[bad][0])}")
        order = np.argsort(keys)
        self._sorted_keys, self._sorted_labels = keys[order], self.labels[order]

    def palette(self):
        """(num_classes, 3) uint8: the first colour of each class (black for a class with none)."""
        pal = np.zeros((self.num_classes, 3), np.uint8)
        for colour, label in zip(self.colors[::-1], self.labels[::-1]):
            if label != IGNORE_LABEL:
                pal[label] = colour
        return pal

    def to_labels(self, rgb, where):
        """Class indices of a colour mask.

        Args:
            rgb: uint8 (H, W, 3) colour mask.
            where: the file name, for messages.

        Returns:
            uint8 (H, W): the class of each pixel's colour (255: ignore).

        Raises:
            DataError: a colour not in the table (without `unknown_color="ignore"`), naming
                the file, the colour, its pixel count and the likely cause.
        """
        keys = _keys(rgb.reshape(-1, 3).astype(np.int64))
        uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        pos = np.clip(np.searchsorted(self._sorted_keys, uniq), 0, len(self._sorted_keys) - 1)
        known = self._sorted_keys[pos] == uniq
        labels = np.where(known, self._sorted_labels[pos], IGNORE_LABEL)
        if not known.all() and self.unknown_color == "error":
            raise DataError(_unknown_message(where, uniq[~known], counts[~known], keys.size,
                                             self.name))
        return labels[inverse].reshape(rgb.shape[:2]).astype(np.uint8)


def _keys(colors):
    """(..., 3) integer RGB -> one int64 per colour (r * 65536 + g * 256 + b)."""
    colors = np.asarray(colors, np.int64)
    return colors[..., 0] * 65536 + colors[..., 1] * 256 + colors[..., 2]


def _rgb(key):
    key = int(key)
    return key >> 16, (key >> 8) & 255, key & 255


def _unknown_message(where, keys, counts, total, table):
    order = np.argsort(-counts)
    shown = ", ".join(f"{_rgb(keys[i])} ({int(counts[i])} pixels)" for i in order[:3])
    share = counts.sum() / max(total, 1)
    if str(where).lower().endswith((".jpg", ".jpeg")):
        cause = ("a JPEG mask: lossy compression changes colours near every edge; export the "
                 "masks as PNG")
    elif share <= EDGE_SHARE:
        cause = ("only a few pixels: most likely anti-aliased or resized edges (export masks "
                 "without anti-aliasing, resize them with nearest-neighbour), or give "
                 "unknown_color='ignore' (--unknown-color ignore) to leave them unscored")
    else:
        cause = "a class missing from the table, or the wrong table for these masks"
    return (f"{where}: colour {shown.split(' (')[0]} is not in the colour table ({table}). "
            f"Expected only the table's colours. Received: {len(keys)} unknown colour(s), "
            f"{int(counts.sum())} of {total} pixels: {shown}; likely cause: {cause}")


def voc_table(unknown_color="error"):
    """The PASCAL VOC palette as a table: 21 classes, cream (224, 224, 192) = 255 (void)."""
    pal = voc_palette(256)
    n = len(VOC_CLASSES)
    colors = np.concatenate([pal[:n], pal[IGNORE_LABEL:]])
    labels = list(range(n)) + [IGNORE_LABEL]
    return ColorTable(colors, labels, VOC_CLASSES, unknown_color, name="voc")


def load_table(colors, class_names=None, unknown_color="error"):
    """A `ColorTable` from what `from_folders(colors=...)` takes (see the module docstring).

    Args:
        colors: a dict, a path to a .csv or .json file, or "voc".
        class_names: names that replace the table's (one per class).
        unknown_color: "error" or "ignore".

    Returns:
        a `ColorTable`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the table is malformed (the message names the file and the line).
    """
    if isinstance(colors, ColorTable):
        table = colors
    elif isinstance(colors, str) and colors == "voc":
        table = voc_table(unknown_color)
    elif isinstance(colors, dict):
        table = _from_rows([(v, k, None) for k, v in colors.items()], "colors", unknown_color,
                           allow_int_names=True)
    elif isinstance(colors, (str, os.PathLike)):
        table = _from_file(os.fspath(colors), unknown_color)
    else:
        raise ValueError(f"`colors` must be a dict {{(r, g, b): class}}, a .csv or .json file "
                         f"or 'voc'. Received: colors of type {type(colors).__name__}")
    if class_names is not None:
        class_names = tuple(str(n) for n in class_names)
        if len(class_names) != table.num_classes:
            raise ValueError(f"`class_names` must name the {table.num_classes} classes of the "
                             f"colour table {table.name}. Received: {len(class_names)} names")
        table = ColorTable(table.colors, table.labels, class_names, unknown_color, table.name)
    return table


def _from_file(path, unknown_color):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The colour table must be a file. Received: colors={path!r}, "
                                f"which does not exist")
    size = os.path.getsize(path)
    if size > MAX_TABLE_BYTES:
        raise ValueError(f"{path}: a colour table must be at most {MAX_TABLE_BYTES} bytes. "
                         f"Received: {size} bytes")
    with open(path, "rb") as f:
        text = f.read().decode("utf-8-sig", "replace")
    if path.lower().endswith(".json"):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        rows = _json_rows(doc, path)
    else:
        rows = _csv_rows(text, path)
    return _from_rows(rows, path, unknown_color)


def _csv_rows(text, path):
    """[(name, (r, g, b), index or None)] of `name,r,g,b` lines (header optional)."""
    lines = [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
    if not lines:
        raise ValueError(f"{path}: the colour table is empty. Expected `name,r,g,b` lines")
    header = [c.strip().lower() for c in lines[0]]
    cols = {"name": 0, "r": 1, "g": 2, "b": 3, "id": None}
    first = 1  # the file line of lines[0]
    if {"r", "g", "b"} <= set(header):
        cols = {k: header.index(k) for k in ("r", "g", "b")}
        cols["name"] = next((header.index(k) for k in ("name", "class", "label") if k in header), None)
        cols["id"] = next((header.index(k) for k in ("id", "index", "trainid") if k in header), None)
        lines, first = lines[1:], 2
    elif not _is_int(lines[0][1] if len(lines[0]) > 1 else ""):
        lines, first = lines[1:], 2  # some other header
    rows = []
    for n, line in enumerate(lines, start=first):
        try:
            rgb = tuple(int(line[cols[k]]) for k in ("r", "g", "b"))
            name = line[cols["name"]].strip() if cols["name"] is not None else f"class_{len(rows)}"
            index = int(line[cols["id"]]) if cols["id"] is not None else None
        except (IndexError, ValueError):
            raise ValueError(f"{path}: line {n} must be `name,r,g,b` with integers 0..255. "
                             f"Received: {','.join(line)!r}") from None
        rows.append((name, rgb, index))
    return rows


def _is_int(text):
    try:
        int(text)
        return True
    except ValueError:
        return False


def _json_rows(doc, path):
    rows = []
    if isinstance(doc, dict):
        items = [(k, v, None) for k, v in doc.items()]
    elif isinstance(doc, list):
        items = []
        for entry in doc:
            if isinstance(entry, dict):
                colour = entry.get("color", entry.get("colour"))
                if colour is None and all(k in entry for k in "rgb"):
                    colour = [entry["r"], entry["g"], entry["b"]]
                items.append((entry.get("name", entry.get("class")), colour,
                              entry.get("id", entry.get("index"))))
            elif isinstance(entry, list) and len(entry) == 4:
                items.append((entry[0], entry[1:], None))
            else:
                items.append((None, None, None))
    else:
        items = [(None, None, None)]
    for n, (name, colour, index) in enumerate(items):
        try:
            rgb = tuple(int(c) for c in colour)
            if len(rgb) != 3 or name is None:
                raise ValueError
            index = None if index is None else int(index)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: entry {n} must give a name and a colour [r, g, b]. "
                             f"Received: {json.dumps(items[n][:2])[:80]}") from None
        rows.append((str(name), rgb, index))
    return rows


def _from_rows(rows, name, unknown_color, allow_int_names=False):
    """A table from [(class name or index, (r, g, b), index or None)] rows.

    Rows with an index use it (255: ignore); otherwise each new name is the next class and a
    repeated name is the same class. A dict's int values are indices.
    """
    if not rows:
        raise ValueError(f"{name}: the colour table must list at least one colour")
    colors, labels, names = [], [], {}
    ints = allow_int_names and all(isinstance(r[0], (int, np.integer)) for r in rows)
    for cls, rgb, index in rows:
        try:
            rgb = tuple(int(c) for c in rgb)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) != 3 or min(rgb) < 0 or max(rgb) > 255:
            raise ValueError(f"{name}: a colour must be (r, g, b) with values 0..255. "
                             f"Received: {rgb or cls!r} for class {cls!r}")
        if ints:
            index = int(cls)
        elif index is None:
            index = names.setdefault(str(cls), len([v for v in names.values() if v != IGNORE_LABEL]))
        elif index != IGNORE_LABEL:
            names.setdefault(str(cls), index)
        colors.append(rgb)
        labels.append(index)
    used = sorted({label for label in labels if label != IGNORE_LABEL})
    if ints:
        class_names = [f"class_{i}" for i in range(used[-1] + 1)] if used else []
    else:
        by_index = {v: k for k, v in reversed(list(names.items()))}
        count = (max(by_index) + 1) if by_index else 0
        class_names = [by_index.get(i, f"class_{i}") for i in range(count)]
    if not class_names:
        raise ValueError(f"{name}: the colour table must map at least one colour to a class "
                         f"(not only to {IGNORE_LABEL}, ignore)")
    if len(class_names) > IGNORE_LABEL:
        raise ValueError(f"{name}: at most {IGNORE_LABEL} classes. Received: {len(class_names)}")
    return ColorTable(colors, labels, class_names, unknown_color, name)
