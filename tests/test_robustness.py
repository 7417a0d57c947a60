import math

import pytest

from harness import robustness
from harness.errors import HarnessError


def _pct(logit):
    return 100 / (1 + math.exp(-logit))


def test_effective_robustness_of_a_hand_computed_example():
    # baseline models at logit(ID) = 0, 2 with logit(shifted) = -1, 0: the line is y = 0.5 x - 1
    line = robustness.fit([_pct(0), _pct(2)], [_pct(-1), _pct(0)])
    assert line == pytest.approx((0.5, -1.0))
    # a model at logit(ID) = 1 is predicted at logit -0.5 = 37.754 %; it reaches 50 %: 12.246 points above
    assert robustness.effective_robustness(_pct(1), 50.0, line) == pytest.approx(50 - 37.754067, abs=1e-5)
    assert robustness.effective_robustness(_pct(2), _pct(0), line) == pytest.approx(0.0, abs=1e-9)


def test_perfect_accuracies_stay_finite_and_degenerate_rows_are_errors():
    line = robustness.fit([50.0, 100.0, 0.0], [40.0, 100.0, 0.0])
    assert all(math.isfinite(v) for v in line)
    with pytest.raises(HarnessError, match="2 distinct ID accuracies"):
        robustness.fit([70.0, 70.0], [50.0, 60.0])
    with pytest.raises(HarnessError, match="as many ID as shifted"):
        robustness.fit([70.0, 80.0], [50.0])
