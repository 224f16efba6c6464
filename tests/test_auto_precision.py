"""`--precision auto` / `--mixed-precision auto` (`fcn_keras.auto_precision`): bfloat16 on CPUs
with AVX-512 BF16 or AMX and on GPUs with bfloat16, float32 elsewhere (float16 with loss
scaling for training on GPUs without bfloat16), with the reason in one line; the CPU's flags
and the GPU are passed in, so every case runs on any machine."""

import numpy as np
import pytest

from fcn_keras.auto_precision import choose, describe, float32_hint, inference_precision

AVX2 = "fpu sse2 avx avx2 fma"
ZEN5 = "fpu avx2 fma avx512f avx512bw avx512_vnni avx512_bf16"
SAPPHIRE = "fpu avx2 avx512f amx_tile amx_int8 amx_bf16"


@pytest.mark.parametrize("flags,want,named", [(ZEN5, "bfloat16", "avx512_bf16"),
                                              (SAPPHIRE, "bfloat16", "amx_bf16"),
                                              (AVX2, "float32", "none of avx512_bf16, amx_bf16")])
def test_the_cpu_flags_decide_without_a_gpu(flags, want, named):
    choice, reason = choose(cpu_flags=flags, gpu=None)
    assert choice == want and named in reason
    mixed, mixed_reason = choose(mixed=True, cpu_flags=flags, gpu=None)
    assert mixed == ("mixed_bfloat16" if want == "bfloat16" else None)
    assert named in mixed_reason


def test_a_gpu_decides_over_the_cpu():
    assert choose(cpu_flags=AVX2, gpu=("NVIDIA H100", True)) == ("bfloat16", "the GPU (NVIDIA H100) computes bfloat16")
    assert choose(mixed=True, cpu_flags=AVX2, gpu=("NVIDIA H100", True))[0] == "mixed_bfloat16"
    choice, reason = choose(cpu_flags=ZEN5, gpu=("Tesla T4", False))
    assert choice == "float32" and "Tesla T4" in reason and "no bfloat16" in reason
    choice, reason = choose(mixed=True, cpu_flags=ZEN5, gpu=("Tesla T4", False))
    assert choice == "mixed_float16" and "loss scaling" in reason


def test_what_a_command_prints_and_passes_on():
    assert inference_precision("float32") == ("float32", None)
    assert inference_precision(None) == (None, None)
    assert inference_precision("auto", cpu_flags=ZEN5, gpu=None) == (
        "bfloat16", "--precision auto: bfloat16, because this CPU computes bfloat16 natively (avx512_bf16)")
    precision, line = inference_precision("auto", keras_model=False)
    assert precision is None and "fixed at export" in line
    assert describe(None, "why", flag="--mixed-precision") == "--mixed-precision auto: float32, because why"


def test_a_float32_run_gets_a_hint_only_on_a_native_bfloat16_cpu():
    assert float32_hint(cpu_flags=AVX2) is None
    hint = float32_hint(cpu_flags=SAPPHIRE)
    assert hint.startswith("hint: ") and "amx_bf16" in hint and "--precision bfloat16" in hint
    assert "ran 2.2x faster for inference" in hint
    assert "1.5x faster for training" in float32_hint(cpu_flags=SAPPHIRE, task="training")


def test_predict_command_says_what_auto_chose(tmp_path, capsys):
    from PIL import Image

    from fcn_keras.cli import main
    from fcn_keras.models.fcn import FCN

    model = FCN("alexnet", "32s", num_classes=3, width=0.0625)
    model.save(tmp_path / "m.keras")
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["predict", "--model", str(tmp_path / "m.keras"), str(tmp_path / "a.png"),
                 "--out", str(tmp_path / "out"), "--precision", "auto"]) == 0
    out = capsys.readouterr().out
    choice, reason = choose()
    assert describe(choice, reason) in out.splitlines()
    assert f"computes in {choice})" in out
