"""Rules as data: one YAML file per factor, validated when loaded, evaluated over leg facts.

A rule file is parsed by a Pydantic schema; its condition and value are compiled by the typed
expression language in `expr.py`; its reason template may name only facts it reads; every evidence
quote must appear verbatim in its source. Any failure raises `RuleSetError` naming the file and rule,
so a broken rule set never starts.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from risk_rules.errors import RuleSetError
from risk_rules.expr import CompiledExpression, ExpressionError, compile_expression
from risk_rules.facts import DESTINATION, FACT_TYPES, THIRD_COUNTRY, LegFacts
from risk_rules.forms import AssessmentRequest
from risk_rules.priors import GRADE_NAMES, PRIOR_GRADES, PriorGrade
from risk_rules.sources import quote_problem

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


class PriorIn(BaseModel):
    """The prior of a rule's coefficient: a grade (see `risk_rules.priors`) and why."""

    model_config = ConfigDict(extra="forbid")
    grade: Literal[GRADE_NAMES]  # type: ignore[valid-type]
    rationale: str = Field(min_length=10)
    evidence: list[EvidenceIn] = Field(
        default=[], description="The passages that speak of the factor itself and justify the grade."
    )
    unsupported: str | None = Field(
        default=None,
        min_length=10,
        description="For a factor the sources do not document directly: says so, shown with the factor.",
    )

    @model_validator(mode="after")
    def _grade_rests_on_passages(self) -> PriorIn:
        if self.grade != "weak" and not self.evidence:
            raise ValueError(f"a '{self.grade}' grade must cite the passages that justify it")
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
class Prior:
    """A rule's declared prior: its grade's distribution, why, and the passages behind it."""

    grade: PriorGrade
    rationale: str
    evidence: tuple[Evidence, ...]
    unsupported: str | None


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

    def evaluate(self, facts: LegFacts) -> float:
        """The factor's value on this leg: 0 when the rule does not fire, else in (0, 1]."""
        if facts.kind not in self.applies_to or not self.when.evaluate(facts.values):
            return 0.0
        if self.constant_value is not None:
            return self.constant_value
        value = float(self.value.evaluate(facts.values))
        return min(1.0, max(0.0, value))

    @property
    def constant_value(self) -> float | None:
        """The value when it names no fact (most rules give 1), so scoring skips evaluating it."""
        return self._constant

    def reason(self, facts: LegFacts) -> str:
        rendered = {name: _render(facts.values[name]) for name in self.reads}
        return self.reason_template.format_map(rendered).strip()

    def derived_from(self, facts: LegFacts) -> list[str]:
        seen: dict[str, None] = {}
        for name in self.reads:
            for record in facts.records.get(name, ()):
                seen.setdefault(record, None)
        return list(seen)


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
        """Each rule's value on one leg, in rule order (the model's feature order)."""
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
            evidence=tuple(Evidence(e.source, e.quote) for e in rule.prior.evidence),
            unsupported=" ".join(rule.prior.unsupported.split()) if rule.prior.unsupported else None,
        ),
        _constant=None if value.names else min(1.0, max(0.0, float(value.evaluate({})))),
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
