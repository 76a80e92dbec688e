"""distmatch: distribution-matching generative models with little memory and data access.

Two methods are at its core:

- moving-window (MoW) training of WAE-MMD, CWAE and SWAE autoencoders (Spurek et al., "One-element
  Batch Training by Moving Window", arXiv:1905.12947);
- compressive learning of generative networks from a data sketch (Schellekens & Jacques,
  "Compressive Learning of Generative Networks", ESANN 2020, arXiv:2002.05095).

The package, bottom layer first; each layer imports only the layers above it in this list::

    _core/          validation, the device policy, atomic writes, closed-form autograd, registries
    distances/      MMD, Cramér–Wold, sliced Wasserstein: (N, D) tensors in, 0-d tensor out
    distributed/    torch.distributed collectives only: ranks, gathers, reductions
    data/           data sets from their standard files, CL-GN toys, .npy arrays
    models/         the papers' encoders, decoders and generators, in registries
    runs/           the run folder and what every training run shares (meters, signals, resume)
    report/         figures and the self-contained HTML page of a run
    sketch/         CL-GN: frequency laws, the feature map, sketches, privacy, the .npz file
    window.py       MoW: the moving window of past codes, and the moving sketch
    objectives.py   MoW: the WAE / CWAE / SWAE / skwae costs
    evaluation/     the MoW paper's metrics, FID, Parzen, generator metrics, trained runs
    training/       MoW training: config, run state, the loop
    generation/     generators from a sketch (CL-GN) or exact MMD; the latent route
    reproduce/      the papers' protocols, numbers, tables and figures
    cli/            the distmatch command

Subpackages and modules are imported on use: ``from distmatch import distances``.
"""

__version__ = "0.1.0"
