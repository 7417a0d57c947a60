"""How a foreign checkpoint's state-dict keys become the harness model's keys (a model entry's [state_dict]).

A self-supervised checkpoint (solo-learn) holds the backbone under `backbone.` beside its projector, predictor,
momentum copy and an online linear classifier. `strip_prefix` names the part that is the model: its keys lose the
prefix and every key outside it is not the model's (so it is ignored, and counted). `head_prefix` names where the
classifier head is (`classifier.` in solo-learn, `fc.` in the harness's own layout): those keys become `fc.*`.
`drop` removes keys by glob pattern before anything else. `head = false` says the file has no usable head: the
model's `fc` stays as initialised and the entry can only be an upstream (a linear probe or fine-tune trains one).
Loading stays strict on the model's side: a key the model needs and the file lacks is an error naming it.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

import torch

HEAD = "fc."


@dataclass(frozen=True)
class StateMapping:
    strip_prefix: str = ""
    drop: tuple[str, ...] = ()
    head: bool = True
    head_prefix: str = HEAD

    @property
    def is_identity(self) -> bool:
        return self == StateMapping()

    def to_json(self) -> dict:
        return {"strip_prefix": self.strip_prefix, "drop": list(self.drop), "head": self.head,
                "head_prefix": self.head_prefix}

    def apply(self, state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
        """(the model's state dict, how many keys of the file are not the model's)."""
        kept = {k: v for k, v in state.items() if not any(fnmatch.fnmatchcase(k, p) for p in self.drop)}
        out, ignored = {}, 0
        for key, value in kept.items():
            if self.strip_prefix and key.startswith(self.strip_prefix):
                key = key[len(self.strip_prefix):]
            elif key.startswith(self.head_prefix):
                key = HEAD + key[len(self.head_prefix):]
            elif self.strip_prefix:
                ignored += 1
                continue
            if key.startswith(HEAD) and not self.head:
                ignored += 1
                continue
            out[key] = value
        return out, ignored + len(state) - len(kept)
