"""distmatch: distribution-matching generative models with little memory and data access.

Two methods are at its core:

- moving-window (MoW) training of WAE-MMD, CWAE and SWAE autoencoders (Spurek et al., "One-element
  Batch Training by Moving Window", arXiv:1905.12947);
- compressive learning of generative networks from a data sketch (Schellekens & Jacques,
  "Compressive Learning of Generative Networks", ESANN 2020, arXiv:2002.05095).

Subpackages and modules are imported on use: ``from distmatch import distances``.
"""

__version__ = "0.1.0"
