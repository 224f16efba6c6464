"""Backbones: each function maps a preprocessed BGR tensor to named taps
{"pool3", "pool4", "fc7"} at strides 8, 16, 32; each module's COORDS holds the taps'
coordinate maps, from which the heads derive their crop offsets."""
