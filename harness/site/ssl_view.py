"""The leaderboard's SSL study page: the records of the `ssl` group (benchmarks/test_ssl.py) as one matrix per
profile and dataset: backbones as rows, {fine-tuned, + energy fine-tuning} x {msp, energy} as columns, one metric at
a time (harness.ssl.study holds the layout). Not rendered when no record belongs to the study."""
from __future__ import annotations

from dataclasses import dataclass

from harness.site.findings import MATRIX_METRICS, MatrixCell, MatrixPanel, _mean
from harness.site.cells import cell
from harness.site.records import Case, grouped, ident, profile_kind
from harness.ssl import study


@dataclass(frozen=True)
class StudyGroup:
    profile: str
    kind: str
    dataset: str
    anchor: str
    columns: tuple[tuple[str, str], ...]  # (stage, score)
    panels: tuple[MatrixPanel, ...]


def study_groups(cases: list[Case]) -> list[StudyGroup]:
    """Per (profile, dataset) with study records; the best value of each column marked."""
    out = []
    mine = [c for c in cases if c.record.get("group") == study.GROUP]
    for profile, dataset, members in grouped(mine):
        at = {(*study.place(c.variant), c.score): c for c in members}
        columns = tuple((stage, score) for stage in study.STAGES for score in study.SCORES
                        if any(k[1:] == (stage, score) for k in at))
        known = [b for b in study.BACKBONES if any(k[0] == b for k in at)]
        backbones = known + sorted({k[0] for k in at} - set(known))
        panels = []
        for metric in MATRIX_METRICS:
            best = {}
            for column in columns:
                values = [v for v in (_mean(at.get((b, *column)), metric.key) for b in backbones) if v is not None]
                best[column] = (min if metric.lower_is_better else max)(values) if len(values) > 1 else None
            rows = []
            for backbone in backbones:
                row = []
                for column in columns:
                    case = at.get((backbone, *column))
                    mean = _mean(case, metric.key)
                    row.append(None if case is None else
                               MatrixCell(cell(case.metrics, metric.key, []), mean is not None and mean == best[column],
                                          case.href))
                rows.append((backbone, tuple(row)))
            panels.append(MatrixPanel(metric, ident(profile, dataset, study.GROUP, metric.key), tuple(rows)))
        out.append(StudyGroup(profile, profile_kind(profile), dataset, ident(profile, dataset, study.GROUP), columns,
                              tuple(panels)))
    return out
