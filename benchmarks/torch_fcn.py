"""The PyTorch FCN-32s / 16s / 8s (VGG16) of wkentaro/pytorch-fcn's architecture, for the benchmarks.

Written from the paper's reference nets (voc-fcn32s/16s/8s), as pytorch-fcn ports them:
conv1_1 padded by 100, ceil-mode 2x2 max pools, fc6 a 7x7 convolution, fc7 1x1, Dropout2d,
zero-initialised score layers, bias-free ConvTranspose2d upsampling initialised bilinear
(frozen, as pytorch-fcn's optimiser leaves it), crops 19 (32s), 5 and 27 (16s), 5, 9 and 31
(8s). Input: (N, 3, H, W) BGR minus the mean (pytorch-fcn's transform); output
(N, classes, H, W) logits. `width` scales every channel count as fcn_keras' `width` does.

`copy_from_keras` copies the weights of an fcn_keras model with the same layer names.
"""

import numpy as np
import torch
from torch import nn

BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
HEADS = {"32s": ((64, 32, "upscore"),),
         "16s": ((4, 2, "upscore2"), (32, 16, "upscore16")),
         "8s": ((4, 2, "upscore2"), (4, 2, "upscore_pool4"), (16, 8, "upscore8"))}


def bilinear(k, c):
    """(c, c, k, k) ConvTranspose2d weight: channel i -> i bilinear (pytorch-fcn's init)."""
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = np.ogrid[:k, :k]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    weight = np.zeros((c, c, k, k), np.float32)
    weight[range(c), range(c)] = filt
    return torch.from_numpy(weight)


class TorchFCN(nn.Module):
    def __init__(self, head="8s", num_classes=21, width=1.0):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"`head` must be one of {sorted(HEADS)}. Received: head={head!r}")
        self.head = head

        def ch(c):
            return max(1, int(c * width))

        cin = 3
        self.convs = nn.ModuleDict()
        for b, block in enumerate(BLOCKS, start=1):
            for i, filters in enumerate(block, start=1):
                name = f"conv{b}_{i}"
                self.convs[name] = nn.Conv2d(cin, ch(filters), 3, padding=100 if name == "conv1_1" else 1)
                cin = ch(filters)
        self.fc6 = nn.Conv2d(cin, ch(4096), 7)
        self.fc7 = nn.Conv2d(ch(4096), ch(4096), 1)
        self.drop = nn.Dropout2d()
        self.score_fr = nn.Conv2d(ch(4096), num_classes, 1)
        if head in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(ch(512), num_classes, 1)
        if head == "8s":
            self.score_pool3 = nn.Conv2d(ch(256), num_classes, 1)
        for score in (m for n, m in self.named_children() if n.startswith("score")):
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
        for k, s, name in HEADS[head]:
            up = nn.ConvTranspose2d(num_classes, num_classes, k, stride=s, bias=False)
            up.weight.data.copy_(bilinear(k, num_classes))
            up.weight.requires_grad_(False)
            setattr(self, name, up)

    def forward(self, x):
        h, w = x.shape[2:]
        taps = {}
        y = x
        for b, block in enumerate(BLOCKS, start=1):
            for i in range(1, len(block) + 1):
                y = torch.relu(self.convs[f"conv{b}_{i}"](y))
            y = nn.functional.max_pool2d(y, 2, 2, ceil_mode=True)
            taps[b] = y
        y = self.drop(torch.relu(self.fc6(y)))
        y = self.drop(torch.relu(self.fc7(y)))
        y = self.score_fr(y)
        if self.head == "32s":
            return self.upscore(y)[:, :, 19:19 + h, 19:19 + w]
        y = self.upscore2(y)
        p4 = self.score_pool4(taps[4])
        y = y + p4[:, :, 5:5 + y.shape[2], 5:5 + y.shape[3]]
        if self.head == "16s":
            return self.upscore16(y)[:, :, 27:27 + h, 27:27 + w]
        y = self.upscore_pool4(y)
        p3 = self.score_pool3(taps[3])
        y = y + p3[:, :, 9:9 + y.shape[2], 9:9 + y.shape[3]]
        return self.upscore8(y)[:, :, 31:31 + h, 31:31 + w]

    def copy_from_keras(self, model):
        """Copies every weight from the fcn_keras model's layers of the same names."""
        modules = {**{f"{n}": m for n, m in self.convs.items()},
                   **{n: m for n, m in self.named_children() if n != "convs" and n != "drop"}}
        for name, module in modules.items():
            values = model.get_layer(name).get_weights()
            # Keras Conv2D (kh, kw, in, out) -> (out, in, kh, kw); Conv2DTranspose
            # (kh, kw, out, in) -> ConvTranspose2d (in, out, kh, kw): the same transpose
            module.weight.data.copy_(torch.from_numpy(values[0].transpose(3, 2, 0, 1).copy()))
            if module.bias is not None:
                module.bias.data.copy_(torch.from_numpy(values[1]))


def check_agreement(want, got, name="the port"):
    """The relative max error of `got` against the Keras output `want` (both NHWC arrays).

    Raises:
        AssertionError: different shapes, an all-zero `want`, or a relative error above 1e-4.
    """
    if want.shape != got.shape:
        raise AssertionError(f"output shapes differ: keras {want.shape}, {name} {got.shape}")
    err = float(np.abs(want - got).max() / np.abs(want).max())
    if not np.abs(want).max() > 0 or err > 1e-4:
        raise AssertionError(f"keras and {name} disagree: relative error {err:.2e} > 1e-4")
    return err
