"""Peak memory of one training step against k, for n = 64 (MoW) and for plain steps.

Each configuration runs in a fresh subprocess on synthetic images of the architecture's size:
one warm-up step (so that optimizer state exists), then one measured step.

- CPU: the peak resident set of the step, read from ``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``, with glibc's mmap threshold fixed so that freed tensors leave the
  resident set at once (the resident set then follows the allocator's live bytes). Reported as the process peak during the step (``peak``) and its increase
  over the resident set before the step (``step``: activations, gradients, temporaries).
- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, same two numbers.

Compared in the same run:

- ``plain``: a batch-of-one (k images) autoencoder step with the reconstruction loss only;
- ``mow``: the CWAE moving-window step with n = 64 codes (k fresh + 64 - k from the window);
- ``classical``: n = k, the ordinary mini-batch CWAE step.

    python benchmarks/mow_memory.py --arch celeba_conv --size 64 --k 1,2,4,8,16,32,64
    python benchmarks/mow_memory.py --arch ffhq_conv --size 1024 --k 1,2,4 --modes plain,mow
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, torch
from distmatch.models import build_autoencoder
from distmatch.objectives import AutoencoderObjective
from distmatch.window import MovingWindow

arch, size, k, n, mode, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
torch.manual_seed(0)
model = build_autoencoder(arch, sample_shape=(3, size, size)).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
objective = AutoencoderObjective("cwae")
window = None if mode == "plain" else MovingWindow(n=n if mode == "mow" else k, k=k, dim=model.latent_dim, device=device)
x = torch.rand(k, 3, size, size, device=device)

def step():
    z = model.encode(x)
    rec = model.decode(z)
    if mode == "plain":
        loss = (rec - x).pow(2).flatten(1).sum(1).mean().sqrt()
    else:
        loss = objective(x, rec, window.join(z))["loss"]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if window is not None:
        window.push(z.detach())

def rss_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

step()
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step(); torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
else:
    open("/proc/self/clear_refs", "w").write("5")
    before = rss_kib("VmRSS:") * 1024
    step()
    peak = rss_kib("VmHWM:") * 1024
print(json.dumps({"before": before, "peak": peak}))
"""


def measure(arch: str, size: int, k: int, n: int, mode: str, device: str) -> dict:
    if mode == "classical" and k < 2:
        return {"error": "n = k = 1: the distance needs two codes"}
    # A fixed mmap threshold makes glibc map every large tensor on allocation and unmap it on
    # free, so the resident set follows the live allocations and VmHWM is the allocator's peak.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, arch, str(size), str(k), str(n), mode, device],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode != 0:
        return {
            "error": out.stderr.strip().splitlines()[-1] if out.stderr else f"exit {out.returncode}"
        }
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "step": result["peak"] - result["before"]}


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--arch", default="celeba_conv")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--k", default="1,2,4,8,16,32,64")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--modes", default="plain,mow,classical")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    for k in (int(v) for v in args.k.split(",")):
        for mode in args.modes.split(","):
            row = {"arch": args.arch, "size": args.size, "k": k, "mode": mode, "n": args.n}
            row.update(measure(args.arch, args.size, k, args.n, mode, args.device))
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    # Ratios measured in this run, against the plain batch-of-one step.
    base = next((r for r in rows if r["k"] == 1 and r["mode"] == "plain" and "peak" in r), None)
    print(f"\n{args.arch} at {args.size}x{args.size}, n = {args.n}, device {args.device} (MiB)")
    print("| k | mode | process peak | step increase | peak / plain k=1 | step / plain k=1 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['k']} | {r['mode']} | failed: {r['error']} | | | |")
            continue
        ratios = ("", "")
        if base:
            ratios = (f"{r['peak'] / base['peak']:.3f}", f"{r['step'] / base['step']:.2f}")
        print(
            f"| {r['k']} | {r['mode']} | {mib(r['peak'])} | {mib(r['step'])} | {ratios[0]} | {ratios[1]} |"
        )


if __name__ == "__main__":
    main()
