"""Independent reference executors for fidelity tests.

`caffe_nets`: the paper's reference networks written as Caffe prototxt (VGG16 FCN-32s/16s/8s/
8s-at-once, FCN-AlexNet, and the ImageNet classifiers VGG16, CaffeNet and GoogLeNet), random
`.caffemodel` files for them, and `run_opencv`, which executes prototxt + caffemodel with
OpenCV's Caffe importer (opencv-python-headless < 5). Nothing here imports fcn_keras.
"""
