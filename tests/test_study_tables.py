"""The study tables of the findings (benchmarks/ssl_table.py, benchmarks/pretraining_scale_table.py) on records of
known values: the cells are means over seeds, the real-set means leave the synthetic sets out, and the per-seed gaps
have the claimed sign."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from record_factory import make_record, write_json

ROOT = Path(__file__).resolve().parents[1]
SETS = ("gaussian", "dtd", "cifar100")  # one synthetic, two real


def _record(case_id: str, recipe: str, score: str, seed: int, auroc: float, rms: float, group: str) -> dict:
    record = make_record(case_id, profile="mini", dataset="cifar10", recipe=recipe, score=score, seed=seed,
                         auroc=auroc, sets=SETS)
    record["group"] = group
    record["report"]["metrics"]["calib/rms"]["mean"] = rms
    return record


def _run(script: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _row(out: str, *cells: str) -> list[str]:
    lines = [line for line in out.splitlines() if line.startswith("| " + " | ".join(cells) + " |")]
    assert lines, (cells, out)
    return [c.strip() for c in lines[0].strip("|").split("|")]


def test_ssl_table_means_over_seeds_and_the_gap_to_supervised(tmp_path):
    # make_record: AUROC of the i-th set = auroc - 2 i, so the real sets' mean is auroc - 3, the whole mean auroc - 2
    for seed, (supervised, byol) in enumerate([(60.0, 70.0), (62.0, 66.0)]):
        for variant, recipe, auroc in [("energy_ft-basefinetune", "energy_ft", supervised),
                                       ("energy_ft-basefinetune_byol", "energy_ft", byol),
                                       ("finetune_byol", "finetune_byol", 50.0)]:
            write_json(tmp_path / f"{variant}-{seed}.json",
                       _record(f"cifar10-{variant}-energy", recipe, "energy", seed, auroc, 5.0, "ssl"))
    out = _run("ssl_table.py", tmp_path)
    assert "seeds 0, 1" in out
    row = _row(out, "byol")  # the first table: accuracy; the AUROC table follows
    assert row[1:3] == ["-", "95.00 ± 0.00"]  # finetune_byol was recorded with the energy score only
    aurocs = out.split("AUROC, mean over the OOD sets")[1]
    assert _row(aurocs, "byol")[4] == "66.00 ± 2.83"  # (70 - 2 + 66 - 2) / 2, std of 68 and 64
    real = out.split("AUROC, mean over the real OOD sets")[1]
    assert _row(real, "supervised")[4] == "58.00 ± 1.41"  # 60 - 3 and 62 - 3
    gaps = _row(out, "byol", "ood/mean/auroc")
    assert gaps[2:5] == ["10.00", "4.00", "yes"]
    assert _row(out, "byol", "ood/mean/fpr95@id")[4] == "no"  # the factory's FPR95 does not depend on auroc


def test_ssl_table_refuses_a_directory_without_study_records(tmp_path):
    write_json(tmp_path / "a.json", _record("cifar10-scratch-msp", "scratch", "msp", 0, 60.0, 5.0, "hendrycks2019"))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ssl_table.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "no record of the SSL study" in out.stderr


def test_pretraining_table_decides_the_claim_per_seed(tmp_path):
    scratch, row = tmp_path / "scratch", tmp_path / "row"
    for seed in (0, 1, 2):
        write_json(scratch / f"s{seed}.json",
                   _record("cifar10-scratch-msp", "scratch", "msp", seed, 60.0, 5.0, "hendrycks2019"))
        # fine-tuned: better AUROC on every seed, better RMS on two of three
        write_json(row / f"s{seed}.json",
                   _record("cifar10-finetune-msp", "finetune", "msp", seed, 61.0 + seed, [4.0, 6.0, 4.5][seed],
                           "hendrycks2019"))
    out = _run("pretraining_scale_table.py", "--row", f"20k={row}", "--scratch", scratch)
    assert _row(out, "20k", "finetune")[5] == "59.00 ± 1.00"  # AUROC real: 61 + seed - 3
    assert _row(out, "20k", "ood/mean/auroc")[2:6] == ["1.00", "2.00", "3.00", "yes"]
    assert _row(out, "20k", "calib/rms")[2:6] == ["1.00", "-1.00", "0.50", "no"]
    assert _row(out, "-", "scratch")[2] == "0,1,2"
