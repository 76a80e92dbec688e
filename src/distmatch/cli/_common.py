"""What the command modules share."""


class UsageError(Exception):
    """Bad command-line input; reported in one line with exit status 2."""


DETERMINISTIC_HELP = (
    "deterministic algorithms where PyTorch has them (on CUDA: cuDNN, cuBLAS and compiled "
    "reductions), so that a rerun or a resumed run on the same machine gives the same bits; "
    "slower on a GPU (docs/gpu.md)"
)
