"""The leaderboard's SSL study page (harness.site.ssl_view): one matrix of backbones x {fine-tuned, + energy
fine-tuning} x {msp, energy} from the `ssl` group's records, an entry row, and no page without such records."""
from __future__ import annotations

from record_factory import make_record, write_json

from harness.site import leaderboard
from harness.ssl import study


def _record(variant: str, score: str, auroc: float, recipe: str, group: str = study.GROUP) -> dict:
    record = make_record(f"digits-0-4-{variant}-{score}", recipe=recipe, score=score, auroc=auroc)
    record["group"] = group
    return record


def test_place_reads_backbone_and_stage_from_the_case_variant():
    assert study.place("finetune_dino") == ("dino", "fine-tuned")
    assert study.place("energy_ft-basefinetune") == ("supervised", "+ energy fine-tuning")
    assert study.place("energy_ft-basescratch") == ("scratch", "+ energy fine-tuning")
    assert study.place("finetune-on-my-byol") == ("entry my-byol", "fine-tuned")
    assert study.place("energy_ft-basefinetune-on-my-byol") == ("entry my-byol", "+ energy fine-tuning")


def test_the_study_is_one_matrix_with_the_best_backbone_marked(tmp_path):
    rows = [("scratch", "scratch", 70.0), ("finetune", "finetune", 80.0), ("finetune_byol", "finetune_byol", 90.0)]
    for i, (variant, recipe, auroc) in enumerate(rows):
        for score in study.SCORES:
            write_json(tmp_path / "r" / f"{i}-{score}.json", _record(variant, score, auroc, recipe))
    write_json(tmp_path / "r" / "e.json", _record("energy_ft-basefinetune_byol", "msp", 95.0, "energy_ft"))
    write_json(tmp_path / "r" / "other.json", _record("oe", "msp", 99.0, "oe", group="outlier_exposure"))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    html = (tmp_path / "site" / "ssl.html").read_text()
    assert 'href="ssl.html"' in (tmp_path / "site" / "index.html").read_text()
    auroc = html.split('data-metric="ood/mean/auroc"')[1].split("</table>")[0]
    head = auroc.split("</thead>")[0]
    assert head.index("fine-tuned, msp") < head.index("fine-tuned, energy") < head.index("+ energy fine-tuning, msp")
    body = auroc.split("<tbody>")[1]
    lines = [row for row in body.split("<tr>")[1:]]
    assert [row.split('<th scope="row">')[1].split("<")[0] for row in lines] == ["scratch", "supervised", "byol"]
    assert "★" in lines[2] and "★" not in lines[0]  # the best backbone of its column, and only that one
    assert "99.0" not in html  # another group's record is not in the study
    assert "·" in lines[0]  # scratch has no energy fine-tuned case here


def test_no_study_page_without_study_records(tmp_path):
    write_json(tmp_path / "r" / "a.json", make_record())
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    assert not (tmp_path / "site" / "ssl.html").exists()
    assert "ssl.html" not in (tmp_path / "site" / "index.html").read_text()
