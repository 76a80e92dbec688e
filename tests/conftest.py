import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HAS_CUDA = torch.cuda.is_available()  # read once, before any test hides the GPU
if HAS_CUDA:
    torch.cuda.init()  # this process keeps its GPUs; CUDA_VISIBLE_DEVICES below reaches children


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


def devices() -> list:
    """``cpu``, and ``cuda`` (marked ``cuda``) where a GPU is present."""
    return ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)] if HAS_CUDA else ["cpu"]


@pytest.fixture(autouse=True)
def cpu_unless_marked_cuda(request, monkeypatch):
    """Tests state CPU behaviour (bit-identical resumes, CPU timings, ``device="auto"``) unless
    marked ``cuda``: for them the GPU is hidden, in this process (``torch.cuda.is_available()`` is
    false, so ``auto`` means the CPU) and in the processes they start."""
    if request.node.get_closest_marker("cuda") is not None:
        return
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def modes_seen(monkeypatch):
    """``watch(module)``: from then on, each call of ``module._loop`` (a training loop) records
    whether deterministic algorithms were on; returns the list of those records."""

    def watch(module) -> list[bool]:
        seen, loop = [], module._loop

        def watched(*args):
            seen.append(torch.are_deterministic_algorithms_enabled())
            return loop(*args)

        monkeypatch.setattr(module, "_loop", watched)
        return seen

    return watch
