"""Rules as data: one YAML file per factor, validated when loaded, evaluated over leg facts.

A rule file is parsed by a Pydantic schema; its condition and value are compiled by the typed
expression language in `expr.py`; its reason template may name only facts it reads; every evidence
quote must appear verbatim in its source. Any failure raises `RuleSetError` naming the file and rule,
so a broken rule set never starts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from risk_rules.errors import RuleSetError
from risk_rules.expr import CompiledExpression, ExpressionError, compile_expression
from risk_rules.facts import DERIVED_FACT_INPUTS, DESTINATION, FACT_TYPES, THIRD_COUNTRY, LegFacts
from risk_rules.forms import AssessmentRequest
from risk_rules.priors import DOCUMENTS, GRADE_NAMES, PRIOR_GRADES, PriorGrade, grade_of
from risk_rules.sources import published_by, quote_problem

RULE_ID_PATTERN = r"^[a-z][a-z0-9_]{2,63}$"

# Every example's request fragment is merged into this trip: a British traveller in Beijing in March
# 2024, for whom the bundled reference data records no situation.
EXAMPLE_BASE: dict[str, Any] = {
    "traveler": {"citizenships": ["GB"]},
    "trip": {"legs": [{"country": "CN", "region": "Beijing", "arrive": "2024-03-01", "depart": "2024-03-10"}]},
}


class EvidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1)
    quote: str = Field(min_length=10)


class ExampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    request: dict[str, Any] = Field(description="A request fragment merged into the example base trip.")
    fires: bool
    value: float | None = Field(default=None, ge=0, le=1)


class PriorEvidenceIn(EvidenceIn):
    """A passage behind a prior's grade, with what it documents (see `risk_rules.priors`)."""

    documents: Literal[DOCUMENTS]  # type: ignore[valid-type]
    cases: list[str] = Field(
        default=[],
        description="The documented cases the passage names: the corpus event id of each case the corpus holds"
        " (a fold that holds the event out does not use the passage), else a short description.",
    )

    @model_validator(mode="after")
    def _cases_match(self) -> PriorEvidenceIn:
        if self.documents == "pattern" and self.cases:
            raise ValueError("a passage that describes a pattern names no case")
        if self.documents != "pattern" and not self.cases:
            raise ValueError(f"a passage that documents '{self.documents}' must name its case(s)")
        return self


class PriorIn(BaseModel):
    """The prior of a rule's coefficient: a grade (see `risk_rules.priors`) and why."""

    model_config = ConfigDict(extra="forbid")
    grade: Literal[GRADE_NAMES]  # type: ignore[valid-type]
    rationale: str = Field(min_length=10)
    evidence: list[PriorEvidenceIn] = Field(
        default=[], description="The passages that speak of the factor itself and justify the grade."
    )
    unsupported: str | None = Field(
        default=None,
        min_length=10,
        description="For a factor the sources do not document directly: says so, shown with the factor.",
    )

    @model_validator(mode="after")
    def _grade_follows_the_passages(self) -> PriorIn:
        supported = grade_of((e.documents, e.cases) for e in self.evidence)
        if self.grade != supported:
            raise ValueError(
                f"the passages support the grade '{supported}', not '{self.grade}' (strong: the stated motive or"
                " method in more than one documented case; moderate: named in a documented case or described"
                " as a pattern; weak: no passage)"
            )
        if not self.evidence and not self.unsupported:
            raise ValueError("a prior without evidence must say in 'unsupported' that the sources do not carry it")
        return self


class RuleIn(BaseModel):
    """The schema of one rule file."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=RULE_ID_PATTERN)
    title: str = Field(min_length=3, max_length=120)
    description: str = Field(min_length=10)
    applies_to: list[Literal["destination", "third_country"]] = ["destination"]
    reads: list[str] = Field(min_length=1)
    when: str = Field(min_length=1)
    value: str = "1"
    reason: str = Field(min_length=10)
    evidence: list[EvidenceIn] = Field(min_length=1)
    mitigations: list[str] = []
    examples: list[ExampleIn] = Field(min_length=2)
    prior: PriorIn

    @field_validator("reads")
    @classmethod
    def _known_facts(cls, reads: list[str]) -> list[str]:
        unknown = [name for name in reads if name not in FACT_TYPES]
        if unknown:
            raise ValueError(f"unknown fact(s) {', '.join(unknown)}")
        return reads

    @model_validator(mode="after")
    def _examples_both_ways(self) -> RuleIn:
        if not any(e.fires for e in self.examples) or all(e.fires for e in self.examples):
            raise ValueError("examples must include at least one that fires and one that does not")
        return self


@dataclass(frozen=True)
class Evidence:
    source: str
    quote: str


@dataclass(frozen=True)
class PriorPassage:
    """A passage behind a prior's grade: what it documents, the cases it names, when it was published."""

    source: str
    quote: str
    documents: str
    cases: tuple[str, ...]
    published_by: dt.date


@dataclass(frozen=True)
class Prior:
    """A rule's declared prior: its grade's distribution, why, and the passages behind it."""

    grade: PriorGrade
    rationale: str
    evidence: tuple[PriorPassage, ...]
    unsupported: str | None

    def grade_from(self, keep: Callable[[PriorPassage], bool]) -> PriorGrade:
        """The grade the kept passages support (a fold's or a backtest's prior)."""
        return PRIOR_GRADES[grade_of((p.documents, p.cases) for p in self.evidence if keep(p))]


@dataclass(frozen=True)
class Example:
    name: str
    request: AssessmentRequest
    fires: bool
    value: float | None


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    description: str
    applies_to: frozenset[str]
    reads: tuple[str, ...]
    when: CompiledExpression
    value: CompiledExpression
    reason_template: str
    evidence: tuple[Evidence, ...]
    mitigations: tuple[str, ...]
    examples: tuple[Example, ...]
    file: str
    prior: Prior
    _constant: float | None = None
    # The facts the rule depends on: what it reads, and the inputs of the derived facts it reads (a
    # left-out input changes them). `closure_order` is the same set in a fixed order, for cache keys.
    closure: frozenset[str] = frozenset()
    closure_order: tuple[str, ...] = ()

    def evaluate(self, facts: LegFacts) -> float:
        """The factor's value on this leg as its facts stand: 0 when the rule does not fire, else in (0, 1].

        A fact a left-out field sets holds a placeholder here; scoring and training take such a rule's
        expectation instead (`risk_rules.unknowns`)."""
        return self.evaluate_values(facts.kind, facts.values)

    def evaluate_values(self, kind: str, values: dict[str, Any]) -> float:
        """The factor's value for a leg of `kind` whose facts are `values`."""
        if kind not in self.applies_to or not self.when.evaluate(values):
            return 0.0
        if self._constant is not None:
            return self._constant
        value = float(self.value.evaluate(values))
        return min(1.0, max(0.0, value))

    @property
    def constant_value(self) -> float | None:
        """The value when it names no fact (most rules give 1), so scoring skips evaluating it."""
        return self._constant

    def reason(self, facts: LegFacts) -> str:
        key = tuple(facts.values[name] for name in self.reads)
        cached = _REASONS.get((self.id, self.reason_template, key))
        if cached is None:
            rendered = {name: _render(value) for name, value in zip(self.reads, key, strict=True)}
            cached = self.reason_template.format_map(rendered).strip()
            if len(_REASONS) >= 50_000:
                _REASONS.clear()
            _REASONS[(self.id, self.reason_template, key)] = cached
        return cached

    def derived_from(self, facts: LegFacts) -> list[str]:
        seen: dict[str, None] = {}
        for name in self.reads:
            for record in facts.records.get(name, ()):
                seen.setdefault(record, None)
        return list(seen)


# Reason sentences by rule and the values it reads: the same few sentences recur across trips.
_REASONS: dict[tuple, str] = {}


def _render(value: Any) -> str:
    if isinstance(value, frozenset | set):
        return ", ".join(sorted(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class FiredRule:
    rule: Rule
    leg_index: int
    value: float


@dataclass(frozen=True)
class RuleSet:
    """A validated rule set with its content hash."""

    rules: tuple[Rule, ...]
    version: str

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.rules]

    def by_id(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def values(self, facts: LegFacts) -> list[float]:
        """Each rule's value on one leg whose request leaves nothing out, in rule order (the model's
        feature order). A leg with fields left out is valued by `risk_rules.unknowns.Expectations`."""
        if facts.unknown:
            raise ValueError(
                "the leg's request leaves out " + ", ".join(sorted(facts.unknown)) + ": value it with"
                " risk_rules.unknowns.Expectations, which takes their expectation"
            )
        return [rule.evaluate(facts) for rule in self.rules]


def deep_merge(base: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """Merge `fragment` into a copy of `base`: mappings merge, everything else replaces."""
    merged = dict(base)
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _compile(rule: RuleIn, file: str) -> Rule:
    try:
        when = compile_expression(rule.when, FACT_TYPES)
        value = compile_expression(rule.value, FACT_TYPES)
    except ExpressionError as exc:
        raise RuleSetError(file, rule.id, str(exc)) from exc
    if when.type != "bool":
        raise RuleSetError(file, rule.id, f"'when' must be a condition (bool), got {when.type}")
    if value.type != "number":
        raise RuleSetError(file, rule.id, f"'value' must be a number, got {value.type}")
    unread = sorted((when.names | value.names) - set(rule.reads))
    if unread:
        raise RuleSetError(file, rule.id, f"uses fact(s) not listed in 'reads': {', '.join(unread)}")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(rule.reason) if f is not None}
    except ValueError as exc:
        raise RuleSetError(file, rule.id, f"malformed reason template: {exc}") from exc
    bad = sorted(f for f in fields if f not in rule.reads)
    if bad:
        raise RuleSetError(file, rule.id, f"reason names {', '.join(bad)}, which the rule does not read")
    for label, items in (("evidence", rule.evidence), ("prior.evidence", rule.prior.evidence)):
        for item in items:
            problem = quote_problem(item.source, item.quote)
            if problem:
                raise RuleSetError(file, rule.id, f"{label}: {problem}")
    examples = []
    for example in rule.examples:
        try:
            request = AssessmentRequest.model_validate(deep_merge(EXAMPLE_BASE, example.request))
        except ValidationError as exc:
            raise RuleSetError(file, rule.id, f"example '{example.name}' is not a valid request: {exc}") from exc
        examples.append(Example(example.name, request, example.fires, example.value))
    closure = frozenset(rule.reads).union(*(DERIVED_FACT_INPUTS.get(name, ()) for name in rule.reads))
    return Rule(
        id=rule.id,
        title=rule.title,
        description=rule.description.strip(),
        applies_to=frozenset(rule.applies_to),
        reads=tuple(rule.reads),
        when=when,
        value=value,
        reason_template=rule.reason.strip(),
        evidence=tuple(Evidence(e.source, e.quote) for e in rule.evidence),
        mitigations=tuple(rule.mitigations),
        examples=tuple(examples),
        file=file,
        prior=Prior(
            grade=PRIOR_GRADES[rule.prior.grade],
            rationale=" ".join(rule.prior.rationale.split()),
            evidence=tuple(
                PriorPassage(e.source, e.quote, e.documents, tuple(e.cases), published_by(e.source))
                for e in rule.prior.evidence
            ),
            unsupported=" ".join(rule.prior.unsupported.split()) if rule.prior.unsupported else None,
        ),
        _constant=None if value.names else min(1.0, max(0.0, float(value.evaluate({})))),
        closure=closure,
        closure_order=tuple(sorted(closure)),
    )


def bundled_rules_dir() -> Path:
    return Path(str(resources.files("risk_rules") / "rules"))


def load_rules_from_texts(files: Iterable[tuple[str, str]]) -> RuleSet:
    """Validate rule files given as (file name, YAML text) pairs and build a rule set."""
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    digest = hashlib.sha256()
    for name, text in sorted(files):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RuleSetError(name, None, f"not valid YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise RuleSetError(name, None, "a rule file must hold one mapping")
        rule_id = document.get("id") if isinstance(document.get("id"), str) else None
        try:
            parsed = RuleIn.model_validate(document)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}" for err in exc.errors()
            )
            raise RuleSetError(name, rule_id, details) from exc
        if parsed.id in seen:
            raise RuleSetError(name, parsed.id, f"duplicate rule id (also in {seen[parsed.id]})")
        seen[parsed.id] = name
        rules.append(_compile(parsed, name))
    if not rules:
        raise RuleSetError("(rule set)", None, "no rule files found")
    return RuleSet(rules=tuple(rules), version="rules-" + digest.hexdigest()[:12])


def load_rules(directory: Path | None = None) -> RuleSet:
    """Load and validate every `*.yaml` rule file in `directory` (default: the bundled rules)."""
    folder = directory or bundled_rules_dir()
    return load_rules_from_texts((p.name, p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.yaml")))


_BUNDLED: RuleSet | None = None


def bundled_rules() -> RuleSet:
    """The bundled rule set, loaded once per process."""
    global _BUNDLED
    if _BUNDLED is None:
        _BUNDLED = load_rules()
    return _BUNDLED


def fired_rules(ruleset: RuleSet, legs: Sequence[LegFacts]) -> list[FiredRule]:
    """Every (rule, leg) pair that fires, for explanation and tests."""
    fired = []
    for index, facts in enumerate(legs):
        if facts.kind not in (DESTINATION, THIRD_COUNTRY):
            continue
        for rule in ruleset.rules:
            value = rule.evaluate(facts)
            if value > 0:
                fired.append(FiredRule(rule, index, value))
    return fired
