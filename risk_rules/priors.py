"""The prior grades: how strongly the reference sources support a factor, as a prior on its coefficient.

Every rule declares a grade for its coefficient (log-odds per unit of the factor's value) and the
passages that justify it. The grade follows from the passages by the grade table's own words
(`grade_of`), so that a grade can be recomputed from any subset of them: the passages a reader could
have read before a backtest's cutoff, or those that do not rest on an event held out of a fold. This
module is the one place where a grade becomes numbers. The priors are normal distributions truncated at
zero: the sources only ever describe these factors as raising the risk, so a negative coefficient has no
support and zero prior mass.

What a passage documents (each prior passage says which):
- `motive_or_method`: it states the factor as the motive or the method of a state's action in the
  documented case(s) it names;
- `case`: it names the factor in a documented case without stating it as the motive;
- `pattern`: it describes the factor as a pattern, naming no case.

Why these numbers (they are on the model card too):
- `strong`: the sources describe the factor as the stated motive or method in more than one documented
  case ("the exact same MO, taking hostages in response"). Mean 2.0 (odds ×7.4), sd 1.0: the 95% prior
  interval runs from about odds ×1.4 to ×55, so a handful of cases can still move it either way.
- `moderate`: the sources name the factor in a documented case or describe it as a pattern, but not as
  the motive of repeated detentions. Mean 1.0 (odds ×2.7), sd 0.75.
- `weak`: plausible and consistent with the sources, but no passage documents it directly (or only
  through one ambiguous case). Mean 0.3 (odds ×1.35), sd 0.5: the prior lets the cases push it to zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

_STANDARD = NormalDist()


@dataclass(frozen=True)
class PriorGrade:
    """A prior grade: a normal distribution on the log-odds scale, truncated at `lower`."""

    name: str
    mean: float
    sd: float
    meaning: str
    lower: float = 0.0

    def quantile(self, q: float) -> float:
        """The q-quantile of the truncated normal (used for the 95% prior interval on the card)."""
        a = float(_STANDARD.cdf((self.lower - self.mean) / self.sd))
        return self.mean + self.sd * float(_STANDARD.inv_cdf(a + q * (1.0 - a)))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        tail = (1.0 - level) / 2.0
        return self.quantile(tail), self.quantile(1.0 - tail)

    def expected(self) -> float:
        """The mean of the truncated distribution (not the location parameter)."""
        alpha = (self.lower - self.mean) / self.sd
        pdf = math.exp(-0.5 * alpha * alpha) / math.sqrt(2 * math.pi)
        return self.mean + self.sd * pdf / (1.0 - float(_STANDARD.cdf(alpha)))


PRIOR_GRADES: dict[str, PriorGrade] = {
    "strong": PriorGrade(
        "strong",
        2.0,
        1.0,
        "the sources describe the factor as the stated motive or method in more than one documented case",
    ),
    "moderate": PriorGrade(
        "moderate",
        1.0,
        0.75,
        "the sources name the factor in a documented case or describe it as a pattern",
    ),
    "weak": PriorGrade(
        "weak",
        0.3,
        0.5,
        "plausible and consistent with the sources, but no passage documents it directly",
    ),
}

GRADE_NAMES = tuple(PRIOR_GRADES)
DOCUMENTS = ("motive_or_method", "case", "pattern")


def grade_of(passages: Iterable[tuple[str, Iterable[str]]]) -> str:
    """The grade a set of passages supports, by the grade table's definitions.

    `passages` are (what the passage documents, the cases it names) pairs. Strong: the factor is the
    stated motive or method in more than one documented case; moderate: it is named in a documented case
    or described as a pattern; weak: no passage.
    """
    motive_cases: set[str] = set()
    any_passage = False
    for documents, cases in passages:
        any_passage = True
        if documents == "motive_or_method":
            motive_cases.update(cases)
    if len(motive_cases) > 1:
        return "strong"
    return "moderate" if any_passage else "weak"
