"""The prior grades: truncated normals whose intervals and means the card shows."""

import pytest
from scipy.stats import truncnorm

from risk_rules.priors import PRIOR_GRADES


@pytest.mark.parametrize("grade", list(PRIOR_GRADES.values()), ids=list(PRIOR_GRADES))
def test_grade_interval_and_mean_are_those_of_the_truncated_normal(grade) -> None:
    reference = truncnorm((grade.lower - grade.mean) / grade.sd, float("inf"), loc=grade.mean, scale=grade.sd)
    lo, hi = grade.interval()
    assert lo == pytest.approx(reference.ppf(0.025), abs=1e-9)
    assert hi == pytest.approx(reference.ppf(0.975), abs=1e-9)
    assert grade.expected() == pytest.approx(reference.mean(), abs=1e-9)
    assert lo >= 0


def test_grades_are_ordered_by_strength() -> None:
    strong, moderate, weak = (PRIOR_GRADES[g] for g in ("strong", "moderate", "weak"))
    assert strong.expected() > moderate.expected() > weak.expected() > 0
