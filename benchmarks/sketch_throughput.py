"""Throughput of one-pass sketching against the bare matrix product and pycle 1.2.

Random float32 data, m = 10,000 frequencies (folded Gaussian), two shapes: (N, d=784) and (N, d=2).
Measured in one process, the methods interleaved in each of ``--repeats`` rounds; medians reported:

- ``sketch``: :func:`distmatch.sketch.sketch_dataset` (batch_size 10,000, eager);
- ``sketch+compile``: the same with ``compile=True`` (compilation is done before timing);
- ``sketch+compile b=B``: the same in chunks of ``B`` rows (``--other-batches``): on a GPU, chunks
  whose (B, m) phases fit in its L2 cache are read back from there;
- ``sketch+fused``: the same with ``fused=True`` (``--fused``; CUDA and Triton): product, cosines,
  sines and sums in one Triton kernel per chunk, no (B, m) phases written;
- ``x@Omega``: the bare product ``x Omega`` over the same 10,000-row chunks (a fresh output each);
- ``mm(out=)``: the same product written into one preallocated output (pure arithmetic cost);
- ``pycle``: ``computeSketch`` with ``SimpleFeatureMap("ComplexExponential", Omega)`` on the first
  ``--pycle-n`` samples (float64, its own batch size); its time is scaled to N samples.

Targets: sketch / (x@Omega) <= 1.15 at d = 784; sketch >= 5x faster than pycle. A second table
times ``sketch_distance`` forward + backward (1,000 samples) in closed form against autograd.

    python benchmarks/sketch_throughput.py --n 20000
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from distmatch.sketch import FourierFeatures, fused_available, sketch_dataset, sketch_distance

M = 10_000
BATCH = 10_000


def timed(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def sketch_methods(x: torch.Tensor, features: FourierFeatures, device: torch.device, args):
    omega = features.frequencies.to(device)
    out = torch.empty(BATCH, M, device=device)

    def bare() -> None:
        for i in range(0, len(x), BATCH):
            x[i : i + BATCH].to(device) @ omega

    def bare_out() -> None:
        for i in range(0, len(x), BATCH):
            chunk = x[i : i + BATCH].to(device)
            torch.mm(chunk, omega, out=out[: len(chunk)])

    def ours(compile: bool = False, batch: int = BATCH, fused: bool = False):
        return lambda: sketch_dataset(
            x, features, batch_size=batch, device=device, progress=False, compile=compile,
            fused=fused,
        )  # fmt: skip

    methods = {"sketch": ours(), "x@Omega": bare, "mm(out=)": bare_out}
    if not args.no_compile:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            ours(True)()  # compiles (and runs once)
            compile_s = time.perf_counter() - start
        if any("torch.compile failed" in str(w.message) for w in caught):
            print("  compile=True: torch.compile failed here; not timed")
        else:
            gap = float((ours(True)().mean - ours(False)().mean).abs().max())
            print(
                f"  compile=True: first call (compilation + one pass) {compile_s:.1f} s; "
                f"max |mean difference| to eager {gap:.1e}"
            )
            methods["sketch+compile"] = ours(True)
    if args.fused:
        if not fused_available(device):
            print(f"  --fused: needs CUDA and Triton; not timed on {device}")
        else:
            start = time.perf_counter()
            fused = ours(fused=True)()  # builds the kernel (and runs once)
            gap = float((fused.mean - ours(False)().mean).abs().max())
            print(
                f"  fused kernel: first call {time.perf_counter() - start:.1f} s; "
                f"max |mean difference| to eager {gap:.1e}"
            )
            methods["sketch+fused"] = ours(fused=True)
    for batch in args.other_batches:  # smaller chunks: their phases may stay in the cache
        methods[f"sketch+compile b={batch}"] = ours(not args.no_compile, batch)
    return methods


def pycle_method(x: torch.Tensor, features: FourierFeatures, n: int):
    try:
        from pycle.sketching import SimpleFeatureMap, computeSketch
    except ImportError:
        return None, None
    data = x[:n].double().numpy()
    feature_map = SimpleFeatureMap("ComplexExponential", features.frequencies.double().numpy())

    def run():
        return computeSketch(data, feature_map)

    ours = sketch_dataset(x[:n].double(), features, device="cpu", progress=False).mean
    z = run()
    gap = ours - torch.cat([torch.from_numpy(z.real), torch.from_numpy(z.imag)]) / math.sqrt(M)
    return run, float(gap.abs().max())


def bench_shape(n: int, d: int, device: torch.device, args) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, d, generator=g)  # float32
    features = FourierFeatures(d, M, bandwidth=math.sqrt(1e-3), generator=g)
    print(f"\nN={n}, d={d}, m={M}, float32, device={device}")
    methods = sketch_methods(x, features, device, args)
    pycle_n = min(args.pycle_n, n)
    run_pycle, gap = pycle_method(x, features, pycle_n)
    if run_pycle is not None:
        methods[f"pycle (n={pycle_n})"] = run_pycle
        print(f"  pycle agrees with ours on n={pycle_n}: max |difference| = {gap:.1e}")
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            times[name].append(timed(fn, device))
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in median.items():
        count = pycle_n if name.startswith("pycle") else n
        per_n = seconds * n / count
        note = f"  (scaled from {count} samples)" if count != n else ""
        print(f"  {name:<20} {per_n:8.3f} s   {n / per_n:12,.0f} samples/s{note}")
    base = median["x@Omega"]
    for name in [m for m in median if m.startswith("sketch")]:
        if name in median:
            print(
                f"  ratio {name} / x@Omega = {median[name] / base:.3f}"
                f"   ({name} / mm(out=) = {median[name] / median['mm(out=)']:.3f})"
            )
    if run_pycle is not None:
        pycle_per_n = median[f"pycle (n={pycle_n})"] * n / pycle_n
        for name in ("sketch", "sketch+compile"):
            if name in median:
                print(f"  speed-up of {name} over pycle: {pycle_per_n / median[name]:.1f}x")


def bench_distance(d: int, args) -> None:
    g = torch.Generator().manual_seed(1)
    features = FourierFeatures(d, M, bandwidth=math.sqrt(1e-3), generator=g)
    s = sketch_dataset(torch.rand(5000, d, generator=g), features, progress=False, device="cpu")
    omega, target = features.frequencies, s.mean.float()
    y0 = torch.rand(1000, d, generator=g)

    def autograd_loss(y: torch.Tensor) -> torch.Tensor:
        t = y @ omega
        phi = torch.cat([t.cos(), t.sin()], dim=1) / math.sqrt(M)
        return (phi.mean(dim=0) - target).square().sum()

    def step(loss_fn) -> Callable[[], None]:
        def run() -> None:
            y = y0.clone().requires_grad_(True)
            loss_fn(y).backward()

        return run

    methods = {
        "closed form": step(lambda y: sketch_distance(s, y)),
        "autograd": step(autograd_loss),
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(max(args.repeats, 5)):
        for name, fn in methods.items():
            times[name].append(timed(fn, torch.device("cpu")))
    closed, auto = (statistics.median(times[k]) for k in methods)
    print(
        f"  d={d:<4} closed form {closed * 1e3:7.1f} ms   autograd {auto * 1e3:7.1f} ms"
        f"   speed-up {auto / closed:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000, help="samples per shape (paper: 60,000)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--pycle-n", type=int, default=2_000, help="samples given to pycle")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda'")
    parser.add_argument("--no-compile", action="store_true", help="skip compile=True")
    parser.add_argument(
        "--fused", action="store_true", help="also time fused=True (CUDA and Triton)"
    )
    parser.add_argument(
        "--other-batches",
        default="",
        help="comma-separated chunk sizes to time beside 10,000 (compiled unless --no-compile)",
    )
    args = parser.parse_args()
    args.other_batches = [int(b) for b in args.other_batches.split(",") if b]
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for d in (784, 2):
        bench_shape(args.n, d, device, args)
    print("\nsketch_distance forward + backward, 1,000 samples, m = 10,000, CPU:")
    for d in (2, 784):
        bench_distance(d, args)


if __name__ == "__main__":
    main()
