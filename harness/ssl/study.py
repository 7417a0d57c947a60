"""The SSL study's layout as data (docs/ssl.md): which recipe trains each backbone's fine-tuned model, and where a
record sits in the study's matrix. Pure data (no torch): the benchmark module builds its cases from it and the
leaderboard (harness.site) reads its records back through it.

Rows: the backbones, each fine-tuned on the in-distribution set; scratch is trained there directly. Columns: the
fine-tuned model, and the same model energy fine-tuned (`energy_ft` with that model as its `base`), each scored
with MSP and the energy score. A model entry (released or user weights) is one more row: `finetune` on its
checkpoint (case id `...-on-<entry>-...`).
"""
from __future__ import annotations

GROUP = "ssl"
# backbone -> the recipe of its fine-tuned model
BACKBONES = {"scratch": "scratch", "supervised": "finetune", "byol": "finetune_byol",
             "barlow_twins": "finetune_barlow_twins", "dino": "finetune_dino"}
STAGES = ("fine-tuned", "+ energy fine-tuning")
SCORES = ("msp", "energy")
ENERGY = "energy_ft"
ENTRY_MARK = "-on-"  # harness.runner.Case.id names a case's model entry after this


def place(variant: str) -> tuple[str, str]:
    """(backbone, stage) of a study case from its variant (its case id without dataset and score: `finetune_byol`,
    `energy_ft-basefinetune_dino`, `finetune-on-my-byol`)."""
    variant, _, entry = variant.partition(ENTRY_MARK)
    stage = STAGES[0]
    if variant.startswith(f"{ENERGY}-base"):
        variant, stage = variant.removeprefix(f"{ENERGY}-base"), STAGES[1]
    if entry:
        return f"entry {entry}", stage
    backbone = next((b for b, recipe in BACKBONES.items() if recipe == variant), variant)
    return backbone, stage
