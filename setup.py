"""fcn_keras: Fully Convolutional Networks for semantic segmentation, as a Keras 3 model zoo."""

from setuptools import find_packages, setup

setup(
    name="fcn_keras",
    version="0.1.0",
    description="Fully Convolutional Networks (Long, Shelhamer & Darrell) for Keras 3 / TensorFlow: "
                "the paper's exact nets, weights, tf.data training, SavedModel/TFLite/ONNX/web export",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["fcn_keras", "fcn_keras.*"]),
    # the web export's page and module; its ONNX Runtime Web files come from web/ (npm ci --prefix web)
    package_data={"fcn_keras": ["data/*.txt", "export/web_assets/*.js", "export/web_assets/*.html"]},
    install_requires=[
        # `tensorflow`, never `tensorflow-cpu`: its Linux wheel runs on the CPU too, and a GPU
        # user's `tensorflow[and-cuda]` is then the same distribution, not a second one
        # written over the same tensorflow/ folder
        "tensorflow>=2.21,<2.22",
        "keras>=3.15.1,<3.16",
        "numpy>=1.26,<3",
        "pillow>=10.1,<14",
        "protobuf>=6.31.1,<8",
        "tqdm>=4.66,<5",
        "matplotlib>=3.8,<4",
        "h5py>=3.7,<4",
        "scipy>=1.11,<2",
        "tensorflow-datasets>=4.9.7,<4.10",
        # TFDS 4.9's DatasetBuilder.code_path imports the importlib_resources backport but
        # declares it only for Python < 3.9: without it every TFDS builder fails to prepare
        "importlib_resources>=6.4,<8",
        # export (ONNX, its int8 quantiser and runtime, the LiteRT interpreter that verifies
        # TFLite files): half of what the package is for, and a step of `fcn-keras demo`
        "tf2onnx>=1.17,<1.18",
        "onnx>=1.17,<2",
        "onnxruntime>=1.20,<2",
        "ai-edge-litert>=2.3,<3",
    ],
    extras_require={
        # kept so that `pip install "fcn_keras[export]"` still works: export is in the default install
        "export": [],
        # export(..., "tflite", target="mediapipe"): the TFLite Model Metadata schema classes, and
        # MediaPipe's Image Segmenter that its tests run the file in
        "mediapipe": ["mediapipe==1.2.3"],
        # export(..., "openvino"): OpenVINO's converter and runtime (Intel CPUs, GPUs, NPUs)
        "openvino": ["openvino==2026.4.1"],
        # TensorFlow on NVIDIA GPUs (CUDA and cuDNN from pip), same version range
        "cuda": ["tensorflow[and-cuda]>=2.21,<2.22"],
        # the other Keras backends (KERAS_BACKEND=jax / torch), as the tests use them; JAX on
        # NVIDIA GPUs: add "jax[cuda12]>=0.10,<0.11". torch is pinned: PyPI's Linux wheel is
        # the CUDA build (GPU users get it as is); the CPU-only build:
        # pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
        "jax": ["jax[cpu]>=0.10,<0.11"],
        # dense CRF refinement (predict --refine crf): builds from source (a C++ compiler)
        "crf": ["pydensecrf2>=1.1,<2"],
        "torch": ["torch==2.13.0"],
        # the PyTorch port the benchmarks time side by side (benchmarks/speed.py, gpu_jax.py)
        "bench": ["torch==2.13.0"],
        # playwright drives Debian's chromium (never `playwright install`); scikit-image's bundled
        # sample photos feed the browser tests
        # OpenCV's contrib build: the one mediapipe requires (it has cv2.dnn, the Caffe executor
        # the reference tests use; two OpenCV wheels would overwrite each other's cv2)
        "test": ["pytest>=8,<10", "opencv-contrib-python>=4.8,<5", "jax[cpu]>=0.10,<0.11",
                 "torch==2.13.0", "playwright==1.65.2", "scikit-image>=0.26,<0.27",
                 "pydensecrf2>=1.1,<2", "mediapipe==1.2.3", "openvino==2026.4.1"],
    },
    entry_points={"console_scripts": ["fcn-keras=fcn_keras.cli:main"]},
)
