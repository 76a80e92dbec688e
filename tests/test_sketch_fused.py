"""The fused Triton kernel of the sketch's column sums: its cases run in Triton's interpreter on
the CPU (``fused_kernel_cases.py``, in a process of its own started with ``TRITON_INTERPRET=1``),
against float64 sums of the features; here, what needs no kernel."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distmatch.sketch import FourierFeatures, fused_available, fused_feature_sums, sketch_dataset

HAS_TRITON = importlib.util.find_spec("triton") is not None

# Triton 3.6's interpreter turns a loop bound (a 1-element array) into an int, which NumPy 2.4
# refuses; Triton 3.9 runs the cases under NumPy 2.4, and Triton 3.6 under NumPy 2.3.
INTERPRETER_NUMPY_ERROR = "only 0-dimensional arrays can be converted to Python scalars"


@pytest.mark.skipif(not HAS_TRITON, reason="the fused kernel needs Triton")
def test_the_kernel_in_tritons_interpreter():
    cases = Path(__file__).with_name("fused_kernel_cases.py")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(cases)],
        capture_output=True, text=True, env=env, check=False, cwd=cases.parent,
    )  # fmt: skip
    if (
        done.returncode
        and INTERPRETER_NUMPY_ERROR in done.stdout
        and "interpreter.py" in done.stdout
    ):
        import numpy
        import triton

        pytest.skip(
            f"Triton {triton.__version__}'s interpreter fails under NumPy {numpy.__version__} "
            "(a 1-element array made an int); the cases need a newer Triton or NumPy < 2.4"
        )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout


def test_bad_inputs_of_the_fused_kernel():
    x, omega, dither = torch.zeros(4, 3), torch.zeros(3, 8), torch.zeros(8)
    with pytest.raises(ValueError, match=r"x must be \(N, D\) and omega \(D, m\); got \(4, 3\)"):
        fused_feature_sums(x, torch.zeros(2, 8), dither)
    with pytest.raises(ValueError, match="x must be float32 on cpu; got torch.float64"):
        fused_feature_sums(x.double(), omega, dither)
    with pytest.raises(ValueError, match=r"dither must have shape \(8,\); got \(7,\)"):
        fused_feature_sums(x, omega, torch.zeros(7))


def test_the_fused_kernel_needs_a_cuda_device():
    assert not fused_available("cpu")
    features = FourierFeatures(2, 16)
    with pytest.raises(
        ValueError, match="fused=True needs a CUDA device and Triton; got device cpu"
    ):
        sketch_dataset(torch.rand(10, 2), features, device="cpu", progress=False, fused=True)


def test_the_cli_flag_on_a_cpu_is_one_clear_error(tmp_path):
    out = tmp_path / "s.npz"
    done = subprocess.run(
        [sys.executable, "-m", "distmatch", "sketch", "--dataset", "spiral", "--points", "100",
         "--device", "cpu", "--fused-kernel", "--out", str(out), "--no-progress"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--fused-kernel needs a CUDA device and Triton; got device cpu." in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_cpu_tensors_need_tritons_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="the fused kernel needs CUDA tensors"):
        fused_feature_sums(torch.zeros(4, 3), torch.zeros(3, 8), torch.zeros(8))
