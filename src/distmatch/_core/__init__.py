"""The foundation every layer builds on; it imports nothing of distmatch.

- validation of arguments (``check_*``): one-line errors that name the argument, the expectation
  and what was got;
- :func:`resolve_device`, the one device policy, and :func:`check_memory` before large allocations;
- :func:`atomic_path`, writing files so that a reader never sees half of one;
- :func:`fused`, one autograd node for a value whose gradient is written in closed form;
- the registry helpers: resolving a builder's arguments, the names a registry offers.
"""

from ._checks import (
    check_choice,
    check_float_dtype,
    check_generator,
    check_pair,
    check_positive,
    check_positive_int,
    check_samples,
    check_scales,
    check_seed,
)
from ._devices import (
    available_memory,
    check_memory,
    compiler_available,
    deterministic_algorithms,
    fused_optimizer,
    resolve_device,
)
from ._files import atomic_path, remove_orphans
from ._fused import fused
from ._registry import as_shape, as_widths, resolve

__all__ = [
    "as_shape",
    "as_widths",
    "atomic_path",
    "available_memory",
    "check_choice",
    "check_float_dtype",
    "check_generator",
    "check_memory",
    "check_pair",
    "check_positive",
    "check_positive_int",
    "check_samples",
    "check_scales",
    "check_seed",
    "compiler_available",
    "deterministic_algorithms",
    "fused",
    "fused_optimizer",
    "remove_orphans",
    "resolve",
    "resolve_device",
]
