"""What the command modules share."""

import argparse
import math
from pathlib import Path

from .._core import check_seed


class UsageError(Exception):
    """Bad command-line input; reported in one line with exit status 2."""


DETERMINISTIC_HELP = (
    "deterministic algorithms where PyTorch has them (on CUDA: cuDNN, cuBLAS and compiled "
    "reductions), so that a rerun or a resumed run on the same machine gives the same bits; "
    "slower on a GPU (docs/gpu.md)"
)


def seed_option(text: str, bits: int = 32) -> int:
    """``--seed``: an int in [0, 2^bits) (argparse type: a bad one exits with status 2). Runs
    combine their seed with counters (32 bits); a sketch's frequencies take 63."""
    try:
        return check_seed(int(text), "the seed", bits=bits)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int in [0, 2^{bits}); got '{text}'") from None


def frequency_seed_option(text: str) -> int:
    """``sketch --seed``: an int in [0, 2^63), what a sketch file's frequency seed may hold."""
    return seed_option(text, bits=63)


def bandwidth_flag(value: str | float | None) -> float | str | None:
    """--bandwidth: None (not given), 'auto', or a finite number > 0 (a UsageError else)."""
    if value is None or value == "auto":
        return value
    try:
        bandwidth = float(value)
    except ValueError:
        bandwidth = math.nan
    if not 0 < bandwidth < math.inf:
        raise UsageError(f"--bandwidth must be a number > 0 or 'auto'; got '{value}'.")
    return bandwidth


OVERWRITE_HELP = "replace an existing output file (by default an existing one is refused)"


def check_new_file(path: Path, overwrite: bool, option: str = "--out") -> None:
    """Refuses to write over an existing file unless ``overwrite`` (a folder, always): a command
    never replaces what the user did not ask it to (their data, another command's output)."""
    if path.is_dir():
        raise UsageError(f"{option} '{path}' is a folder; give the path of a file.")
    if path.exists() and not overwrite:
        raise UsageError(
            f"{option} '{path}' exists already; choose another file, remove it or pass --overwrite."
        )
