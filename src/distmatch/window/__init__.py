"""The memory of MoW training: a FIFO window of detached latent codes, or their moving sketch.

At every step the distance term of the autoencoder's cost sees ``n`` codes: the ``k`` fresh codes of
the current batch, which carry gradient, joined to the ``n - k`` codes of earlier steps kept here,
which do not. After the optimizer step the fresh codes replace the oldest ones. So only ``k`` inputs
(down to one) are in memory, while the distance is estimated from ``n`` points.

**Moving sketch.** Instead of a window of ``n - k`` codes, keep an exponential moving average ``s``
of the mean features of past fresh codes (detached). The joined sketch of a step with ``B`` fresh
codes weighs them as a window of ``n`` would::

    joined = (B / n) mean_i Phi(z_i) + (1 - B / n) s,      s <- (1 - beta) s + beta mean_i Phi(z_i)

with ``beta = min(1, 2B / n)``. For independent codes of one law this EMA has the expectation of the
windowed mean (the law's sketch) and, at ``beta = 2k / n``, its variance: ``sigma^2 / k * beta /
(2 - beta) = sigma^2 / (n - k)``, the variance of a window of ``n - k`` codes. Memory is O(m),
whatever ``n``; ``s`` starts at (and is reset to) the prior's exact sketch.

**skwae's window.** skwae's distance sees the codes only through their mean features, so its
window (:class:`FeatureWindow`) keeps the sum of the stored codes' features beside them and joins
sketches: a step computes the features of its ``k`` fresh codes only.

Reference: Spurek, Knop, Tabor, Podolak, Wójcik, "One-element Batch Training by Moving Window",
arXiv:1905.12947, Sec. 3 and Algorithm 1; reference code gmum/MoW.
"""

from ._features import FeatureWindow
from ._sketch import MovingSketch
from ._window import INITS, REFRESHES, MovingWindow, check_window_sizes

__all__ = [
    "INITS",
    "REFRESHES",
    "FeatureWindow",
    "MovingSketch",
    "MovingWindow",
    "check_window_sizes",
]
