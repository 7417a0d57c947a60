"""Hypothesis profiles: `dev` explores new random examples on every run; `ci` (HARNESS_HYPOTHESIS_PROFILE=ci,
set by .ci/run) replays a fixed derandomized set, so a gate never fails on an example no one has seen locally."""
import os

from hypothesis import settings

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HARNESS_HYPOTHESIS_PROFILE", "dev"))
