"""Pretrained weights: ImageNet backbones, the paper's released FCNs and the zoo.

    fcn_keras.build(weights="voc-fcn8s")                           # a zoo entry (implies vgg16, 8s)
    fcn_keras.build("vgg16", "8s", weights="imagenet")             # backbone only
    fcn_keras.build("vgg16", "8s", weights="fcn8s-heavy-pascal.caffemodel")  # read directly

The loader (`load`, `fetch`, `prefetch`, the converted cache) is `fcn_keras.weights.loader`;
the zoo as data `zoo`; downloads `download`; the Caffe reader `caffemodel`; Caffe and Keras
layouts to fcn_keras layers `mapping`. This face only re-exports their public names.
"""

from fcn_keras.weights import mapping, zoo
from fcn_keras.weights.caffemodel import CaffeModelError, read_caffemodel, write_caffemodel
from fcn_keras.weights.download import ChecksumError, DownloadError, keras_home
from fcn_keras.weights.hdf5 import WeightsFileError
from fcn_keras.weights.loader import (WEIGHT_SUFFIXES, check_cache_folder, converted_path, fetch, load, load_file,
                                      prefetch)
from fcn_keras.weights.mapping import WeightsMismatchError, assign, values_from_caffe, values_from_keras_vgg16

list_models = zoo.list_models

__all__ = [
    "CaffeModelError", "ChecksumError", "DownloadError", "WeightsFileError", "WeightsMismatchError", "assign",
    "check_cache_folder", "converted_path",
    "fetch", "prefetch", "keras_home", "list_models", "load", "load_file", "mapping", "read_caffemodel", "values_from_caffe",
    "values_from_keras_vgg16", "write_caffemodel", "zoo", "WEIGHT_SUFFIXES",
]
