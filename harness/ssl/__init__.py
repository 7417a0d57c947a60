"""Self-supervised pre-training through lightly (the optional extra `[ssl]`, docs/ssl.md).

The recipes `byol`, `barlow_twins`, `dino` and `simclr` (harness.recipes.ssl) train a `learners.Learner`: the
harness backbone, the method's heads, momentum copies and loss from lightly. The harness imports without lightly;
only building a learner needs it.
"""
from __future__ import annotations

from harness.errors import HarnessError

INSTALL = "pip install -e '.[ssl]'"


def lightly():
    """The lightly module, or a one-line HarnessError naming the install command."""
    try:
        import lightly as module
    except ImportError as exc:
        raise HarnessError(f"self-supervised recipes need the lightly package ({exc}); install it with: "
                           f"{INSTALL}") from None
    return module
