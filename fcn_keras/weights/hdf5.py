"""Opening an HDF5 weights file someone else made: only its own, plain data.

HDF5 can store a dataset's bytes in another file (external storage), assemble it from other
files (virtual datasets), or reach it through a soft or external link: reading such a file
reads whatever local file it points at. `open_hdf5` refuses all of these (as Keras' own loader
does) and caps what the file's datasets declare, so reading it reads only its own bytes:

    with open_hdf5("vgg16.h5") as f:      # h5py.File, every object checked
        ...

Errors are `WeightsFileError` (a ValueError) naming the file.
"""

import contextlib
import os

from fcn_keras.weights.caffemodel import CaffeModelError

#: The most bytes a weights file's datasets may declare (VGG16's FCN-8s holds 0.54 GB).
MAX_DECLARED_BYTES = 4 * 2**30


class WeightsFileError(CaffeModelError):
    """A weights file that cannot be read safely: not HDF5, links or storage outside it, too big."""


def _check(f, name):
    """Refuses soft / external links, external storage, virtual and oversized datasets in `f`."""
    import h5py

    total = [0]
    problems = []

    def visit(path, link):
        if not isinstance(link, h5py.HardLink):
            problems.append(f"{path!r} is a {type(link).__name__} (it points outside the object tree)")
            return
        obj = f[path]
        if isinstance(obj, h5py.Dataset):
            if obj.is_virtual:
                problems.append(f"dataset {path!r} is virtual (assembled from other files)")
            elif obj.external:
                problems.append(f"dataset {path!r} is stored in an external file")
            total[0] += int(obj.size) * obj.dtype.itemsize

    f.visititems_links(visit)
    if problems:
        raise WeightsFileError(f"{name}: refused: {problems[0]}; a weights file must hold its own data")
    if total[0] > MAX_DECLARED_BYTES:
        raise WeightsFileError(f"{name}: its datasets declare {total[0]:,} bytes, more than the "
                               f"{MAX_DECLARED_BYTES:,} any FCN's weights need")


@contextlib.contextmanager
def open_hdf5(source, name=None):
    """An h5py.File of `source`, read-only, after checking every object in it (see the module).

    Args:
        source: a path, or a seekable binary file object (e.g. a member of a .keras archive).
        name: how errors name the file (default: the path).

    Yields:
        the open h5py.File.

    Raises:
        FileNotFoundError: no such path.
        WeightsFileError: an empty file, not HDF5, or a link / dataset the module refuses.
    """
    import h5py

    name = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the weights file")
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{name}: no such weights file")
        if os.path.getsize(source) == 0:
            raise WeightsFileError(f"{name}: the file is empty (0 bytes); expected an HDF5 weights file")
    try:
        f = h5py.File(source, "r")
    except OSError as e:
        raise WeightsFileError(f"{name}: not an HDF5 weights file (truncated, or another kind of "
                               f"file: {e})") from None
    with f:
        _check(f, name)
        yield f
