r"""How the learning rate and the weight average move over the steps of a training run.

* learning rate of 0-based step s: :math:`\eta_s = \eta(s)\,\min(1, (s + 1) / W)` with the linear warm-up
  over W = ``warmup`` steps (0: none; for runs continued with ``--init`` whose Adam moments are lost) and
  :math:`\eta(s) = \eta_{min} + (\eta - \eta_{min})(1 + \cos(\pi s / S)) / 2` (cosine over S = ``iterations``)
  or :math:`\eta` (constant);
* weight average (``ema`` = d > 0): after step t (1-based) :math:`\bar w \leftarrow d_t\,\bar w + (1 - d_t)\,w`
  with :math:`d_t = \min(d, (1 + t) / (10 + t))` (fp32, from the initial weights; the warm-up keeps a
  random start from lingering in the average). Its memory is about 1 / (1 - d) steps.
"""

from __future__ import annotations

import math

__all__ = ["lr_at", "ema_decay"]


def lr_at(cfg, step: int) -> float:
    """Learning rate of 0-based ``step``: the schedule's rate times min(1, (step + 1) / warmup).

    cosine: lr_min + (lr - lr_min) (1 + cos(pi step / iterations)) / 2; constant: lr. The linear warm-up
    (``cfg.warmup`` steps, 0 = none) is for runs continued with ``--init`` whose Adam moments are lost.

        >>> from types import SimpleNamespace as N
        >>> lr_at(N(schedule="constant", lr=1e-4, warmup=4), 1), lr_at(N(schedule="constant", lr=1e-4, warmup=0), 0)
        (5e-05, 0.0001)
    """
    if cfg.schedule == "cosine":
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * step / cfg.iterations))
    else:
        lr = cfg.lr
    return lr * min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else lr


def ema_decay(d: float, t: int) -> float:
    """The weight average's decay after step ``t`` (1-based): min(d, (1 + t) / (10 + t)), in [0, d].

        >>> ema_decay(0.999, 1), ema_decay(0.999, 100000)
        (0.18181818181818182, 0.999)
    """
    return min(d, (1 + t) / (10 + t))
