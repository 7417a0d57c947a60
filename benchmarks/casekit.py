"""Helpers the benchmark modules share: case parametrisation and the verdict assertion."""
from __future__ import annotations

import pytest

from harness import profiles, runner, spread
from harness.runner import Case, failures


def seeds(config: pytest.Config) -> list[int]:
    chosen = config.getoption("--seeds")
    return list(chosen if chosen is not None else profiles.get(config.getoption("--profile")).seeds)


def case_params(config: pytest.Config, cases: list[Case]) -> list:
    """pytest.params with readable ids (`cifar10-finetune-msp`, plus `-s1` for seeds beyond the first)."""
    profile = profiles.get(config.getoption("--profile"))
    marks = [pytest.mark.benchmark_case] + ([pytest.mark.gpu, pytest.mark.paper] if profile.device == "cuda" else [])
    run_seeds = seeds(config)
    return [pytest.param(case, seed, id=case.id if len(run_seeds) == 1 else f"{case.id}-s{seed}", marks=marks)
            for case in cases for seed in run_seeds]


def generate(metafunc, cases_of, has_claims=lambda plan: True) -> None:
    """A benchmark module's pytest_generate_tests: `case,seed` over cases_of(profile), `claim_dataset` over the
    profile's datasets whose plan `has_claims`."""
    profile = profiles.get(metafunc.config.getoption("--profile"))
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case,seed", case_params(metafunc.config, cases_of(profile)))
    if "claim_dataset" in metafunc.fixturenames:
        metafunc.parametrize("claim_dataset", [plan.id for plan in profile.datasets if has_claims(plan)])


def assert_verdicts(record: dict) -> None:
    """Fail the case on a band miss (paper profile) or a baseline miss (CPU profiles), with every message."""
    problems = failures(record)
    if problems:
        pytest.fail(f"{record['case_id']} ({record['path']}):\n  " + "\n  ".join(problems), pytrace=False)


def profile_claims(session, papers: tuple[str, ...]) -> list:
    """The claims of these papers' band files that name the run's profile (a dry run: the profile it is a dry run
    of); skips the test when there is none."""
    profile = session.ctx.profile.dry_run_of or session.ctx.profile.name
    loaded = session.ctx.bands or runner.load_bands()
    claims = [c for c in loaded.claims if c.paper in papers and profile in c.profiles]
    if not claims:
        pytest.skip(f"no claim of {', '.join(papers)} names the {profile} profile")
    return claims


def require_measured(by_seed: dict[int, list], needs: str) -> None:
    """Skip, saying what the claims need, unless every claim has both sides at every seed of the run."""
    if not by_seed or any(v.gap is None for verdicts in by_seed.values() for v in verdicts):
        pytest.skip(f"the claims need {needs} in this run, for each seed")


def enforce_claims(session, label: str, by_seed: dict[int, list]) -> None:
    """Fail on claim misses, given {seed: [ClaimVerdict]}: each seed's verdict (a paper claim's margin, or a standing
    claim's regression interval), and, in a run of at least spread.MIN_SEEDS seeds, the direction itself: a
    standing claim must stand again by its test over the run's own gaps. Findings are reported, never enforced.
    In a dry run (profile `dry_run_of`), every verdict goes to the end-of-run summary instead, marked dry-run: the
    sizes are cut to the bone, so the path is checked, not the numbers."""
    lines = [(v.passed is False, f"seed {seed}: {v.message()}") for seed, verdicts in by_seed.items()
             for v in verdicts]
    for claim, gaps in _gaps_by_claim(by_seed).items():
        if claim.decision is not None and claim.decision.stands and len(gaps) >= spread.MIN_SEEDS:
            again = spread.decide(gaps, claim.level)
            lines.append((not again.stands, f"seeds {', '.join(map(str, by_seed))}: "
                                            f"{' vs '.join(claim.sides())} on {claim.metric}: {again.text()}"))
    if session.ctx.profile.dry_run_of:
        session.dry_run_claims += [f"[dry-run] {label}: {'FAIL' if bad else 'reported'} - {line}"
                                   for bad, line in lines]
        return
    failed = [line for bad, line in lines if bad]
    assert not failed, f"{label}:\n" + "\n".join(failed)


def _gaps_by_claim(by_seed: dict[int, list]) -> dict:
    gaps: dict = {}
    for verdicts in by_seed.values():
        for v in verdicts:
            if v.gap is not None:
                gaps.setdefault(v.claim, []).append(v.gap)
    return gaps
