"""Not given is not "no": a factor that reads a left-out field takes its expectation.

A request (or an incident in the corpus) may leave fields out (`risk_rules.facts.LEFT_OUT`). A rule
that reads a fact such a field sets is not judged on the placeholder: its value is its expectation
under the reference population given everything the request does state, the same way for cases,
controls and requests. The reference population's shares (`PopulationShares`) come from the model's
training data and travel inside its artifact, so a score is always taken under the population its
model was fitted on.

For each rule the engine enumerates every value the left-out fields it reads could take (their whole
range, not only the values the population has) with the population's probability of each. That gives:

- the expected value (what the score uses);
- the lowest and highest value (a factor whose value does not depend on what is left out is judged;
  one that does is listed under the field as "not given");
- for each left-out field, the rule's expected value for each value the field could take (what the
  range of scores the field could have produced is built from).

Fields correlated in the population (being born in the destination makes a former nationality, a
destination travel permit, relatives there and a critic in the family likelier) are enumerated
jointly when more than one of them is left out.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from risk_rules.facts import (
    CLAIMED_BY_CITIZENSHIP,
    DERIVED_FACT_INPUTS,
    EMPLOYER_DISPUTES_ACTIVE_SHARE,
    FIRST_PASSPORT_IS_DESTINATIONS,
    LEFT_OUT,
    LegFacts,
    derive_targeting,
)
from risk_rules.forms import Activism, Affiliation, Occupation, Purpose, Sector

if TYPE_CHECKING:
    from risk_rules.ruleset import Rule, RuleSet

# Every value a left-out field could take: an enumeration's members, both truth values, no or one
# activism or affiliation (the rules test membership, so one of each stands for any set holding it).
_BOOL = ((True,), (False,))
_STAY_DAYS = tuple(float(d) for d in range(1, 366))


@dataclass(frozen=True)
class PopulationShares:
    """How often each field a request may leave out takes each value among the reference population's
    trips: the distribution an unknown field's expectation is taken under."""

    occupation: tuple[tuple[str, float], ...]
    sector: tuple[tuple[str, float], ...]
    purpose: tuple[tuple[str, float], ...]
    born: float
    permit_if_claimed_or_born: float
    relatives: float
    relatives_if_born: float
    family_sought: float
    relative_critic_if_claimed_or_born: float
    personally_sought: float
    criminal_investigation: float
    civil_or_commercial_dispute: float
    tax_dispute: float
    criticizes: float
    activism: tuple[tuple[str, float], ...]
    affiliations: tuple[tuple[str, float], ...]
    employer_in_dispute: float
    stay_days: tuple[tuple[float, float], ...]

    def document(self) -> dict[str, Any]:
        """The shares as JSON-ready data (stored in a model artifact)."""
        return {
            name: ([list(pair) for pair in value] if isinstance(value, tuple) else value)
            for name, value in self.__dict__.items()
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> PopulationShares:
        fields = {}
        for name, value in document.items():
            fields[name] = tuple((k, float(p)) for k, p in value) if isinstance(value, list) else float(value)
        return cls(**fields)

    @property
    def version(self) -> str:
        text = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return "pop-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def neutral_shares() -> PopulationShares:
    """Shares under which every left-out field is certainly absent: how models trained before unknowns
    were modelled read a left-out field, so that their stored assessments are re-explained unchanged."""
    return PopulationShares(
        occupation=(("", 1.0),),
        sector=(("", 1.0),),
        purpose=(("", 1.0),),
        born=0.0,
        permit_if_claimed_or_born=0.0,
        relatives=0.0,
        relatives_if_born=0.0,
        family_sought=0.0,
        relative_critic_if_claimed_or_born=0.0,
        personally_sought=0.0,
        criminal_investigation=0.0,
        civil_or_commercial_dispute=0.0,
        tax_dispute=0.0,
        criticizes=0.0,
        activism=(),
        affiliations=(),
        employer_in_dispute=0.0,
        stay_days=((7.0, 1.0),),
    )


@dataclass(frozen=True)
class Group:
    """One or more left-out fields enumerated together: the facts they set, every row of values those
    facts could take, and the population probability of each row (0 for a value it never has)."""

    names: tuple[str, ...]
    facts: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    weights: tuple[float, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(LEFT_OUT[n].field for n in self.names)

    @property
    def key(self) -> tuple:
        return (self.names, self.weights)


def _categorical(values: Sequence[str], shares: tuple[tuple[str, float], ...]) -> tuple[tuple, tuple[float, ...]]:
    """Rows (every value of the enumeration, then any value only the shares name, such as the neutral
    placeholder of `neutral_shares`) and their weights, normalised."""
    weight = dict(shares)
    total = sum(weight.values()) or 1.0
    every = (*values, *(v for v in weight if v not in values))
    return tuple((v,) for v in every), tuple(weight.get(v, 0.0) / total for v in every)


def _bernoulli(p: float) -> tuple[float, float]:
    return (p, 1.0 - p)


def _sets(members: Sequence[str], shares: tuple[tuple[str, float], ...]) -> tuple[tuple, tuple[float, ...]]:
    """No member, or one: rows and weights (the population's share of each member, the rest none)."""
    rows = ((frozenset(),), *((frozenset({m}),) for m in members))
    weight = dict(shares)
    held = min(1.0, sum(weight.values()))
    return rows, (1.0 - held, *(weight.get(m, 0.0) for m in members))


_OCCUPATIONS = tuple(o.value for o in Occupation)
_SECTORS = tuple(s.value for s in Sector)
_PURPOSES = tuple(p.value for p in Purpose)
_ACTIVISM = tuple(a.value for a in Activism)
_AFFILIATIONS = tuple(a.value for a in Affiliation)
# The fields whose population distribution depends on being born in the destination.
_BIRTH_DEPENDENT = ("former_citizenships", "entry_document", "relatives_in_destination", "family_ties")


def _dependent_rows(name: str, values: dict[str, Any], shares: PopulationShares, born: bool) -> tuple[tuple, tuple]:
    """Rows and weights of a field whose population distribution depends on birth in the destination."""
    claimed = bool(values[CLAIMED_BY_CITIZENSHIP])
    if name == "former_citizenships":
        return _BOOL, _bernoulli(1.0 if born and not claimed else 0.0)
    if name == "entry_document":
        if values[FIRST_PASSPORT_IS_DESTINATIONS]:
            return _BOOL, _bernoulli(1.0)
        return _BOOL, _bernoulli(shares.permit_if_claimed_or_born if claimed or born else 0.0)
    if name == "relatives_in_destination":
        p = 1.0 - (1.0 - shares.relatives) * (1.0 - (shares.relatives_if_born if born else 0.0))
        return _BOOL, _bernoulli(p)
    # family ties: a sought relative, a critic relative (critics' families are the destination's own)
    sought = shares.family_sought
    critic = shares.relative_critic_if_claimed_or_born if claimed or born else 0.0
    rows = ((False, False), (True, False), (False, True), (True, True))
    weights = ((1 - sought) * (1 - critic), sought * (1 - critic), (1 - sought) * critic, sought * critic)
    return rows, weights


_SIMPLE_BOOLEANS = {
    "sought_by_destination_authorities": "personally_sought",
    "criminal_investigation": "criminal_investigation",
    "civil_or_commercial_dispute": "civil_or_commercial_dispute",
    "tax_dispute": "tax_dispute",
    "criticizes_destination_government": "criticizes",
}


def groups_for(facts: LegFacts, shares: PopulationShares) -> list[Group]:
    """The left-out fields of one leg as groups to enumerate, conditioned on what the leg states."""
    unknown = facts.unknown
    if not unknown:
        return []
    values = facts.values
    out: list[Group] = []
    for name in sorted(unknown - {"birth_country", *_BIRTH_DEPENDENT}):
        fact_names = LEFT_OUT[name].facts
        if name == "occupation":
            rows, weights = _categorical(_OCCUPATIONS, shares.occupation)
        elif name == "sector":
            rows, weights = _categorical(_SECTORS, shares.sector)
        elif name == "purpose":
            rows, weights = _categorical(_PURPOSES, shares.purpose)
        elif name == "activism":
            rows, weights = _sets(_ACTIVISM, shares.activism)
        elif name == "affiliations":
            rows, weights = _sets(_AFFILIATIONS, shares.affiliations)
        elif name == "employer_name":
            active = float(values.get(EMPLOYER_DISPUTES_ACTIVE_SHARE, 0.0))
            rows, weights = _BOOL, _bernoulli(shares.employer_in_dispute * active)
        elif name == "stay":
            given = dict(shares.stay_days)
            total = sum(given.values())
            days = (*_STAY_DAYS, *(d for d in given if d not in _STAY_DAYS))
            rows = tuple((d,) for d in days)
            weights = tuple(given.get(d, 0.0) / total for d in days)
        else:
            rows, weights = _BOOL, _bernoulli(getattr(shares, _SIMPLE_BOOLEANS[name]))
        out.append(Group((name,), fact_names, rows, tuple(weights)))
    dependents = [n for n in _BIRTH_DEPENDENT if n in unknown]
    if "birth_country" in unknown:
        # Born or not, with every dependent left out enumerated under each.
        names = ("birth_country", *dependents)
        fact_names = tuple(f for n in names for f in LEFT_OUT[n].facts)
        rows: list[tuple] = []
        weights: list[float] = []
        for born, p_born in ((True, shares.born), (False, 1.0 - shares.born)):
            parts = [_dependent_rows(n, values, shares, born) for n in dependents]
            for combo in itertools.product(*(range(len(r)) for r, _ in parts)):
                row: tuple = (born,)
                weight = p_born
                for (r, w), i in zip(parts, combo, strict=True):
                    row += r[i]
                    weight *= w[i]
                rows.append(row)
                weights.append(weight)
        out.append(Group(names, fact_names, tuple(rows), tuple(weights)))
    else:
        born = bool(values["born_in_destination"])
        for name in dependents:
            rows, weights = _dependent_rows(name, values, shares, born)
            out.append(Group((name,), LEFT_OUT[name].facts, rows, tuple(weights)))
    return out


@dataclass(frozen=True)
class RuleDetail:
    """A rule's value on a leg with fields left out: its expectation, range, and, for each group it
    depends on, its expected value under each row of that group."""

    expected: float
    low: float
    high: float
    conditional: tuple[tuple[tuple[str, ...], tuple[float, ...]], ...]  # (group's names, expectation per row)

    @property
    def judged(self) -> bool:
        """The value does not depend on what is left out."""
        return self.low == self.high


# Text facts whose value the rules only compare with literals: every value a rule names no literal for
# behaves alike for that rule, so those rows are enumerated once (their weights summed).
_CATEGORICAL_FACTS = frozenset({"occupation", "sector", "trip_purpose"})
_LITERALS: dict[tuple[str, str, str], frozenset[str] | None] = {}


def _literals(rule: Rule) -> frozenset[str] | None:
    """The text literals a rule's expressions name, or None when it compares two facts with each other
    (then no value may stand for another)."""
    key = (rule.id, rule.when.source, rule.value.source)
    if key not in _LITERALS:
        import ast

        found: set[str] = set()
        plain = True
        for source in (rule.when.source, rule.value.source):
            for node in ast.walk(ast.parse(source, mode="eval")):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
                if isinstance(node, ast.Compare):
                    sides = [node.left, *node.comparators]
                    if sum(isinstance(side, ast.Name) for side in sides) > 1:
                        plain = False
        _LITERALS[key] = frozenset(found) if plain else None
    return _LITERALS[key]


def _collapsed(group: Group, literals: frozenset[str] | None) -> tuple[Group, list[int]]:
    """The group with the rows the rule cannot tell apart merged, and each original row's merged row."""
    if literals is None or len(group.facts) != 1 or group.facts[0] not in _CATEGORICAL_FACTS:
        return group, list(range(len(group.rows)))
    classes: dict[object, int] = {}
    rows: list[tuple] = []
    weights: list[float] = []
    of_row = []
    for row, weight in zip(group.rows, group.weights, strict=True):
        label = row[0] if row[0] in literals else _OTHER
        index = classes.get(label)
        if index is None:
            index = classes[label] = len(rows)
            rows.append(row)
            weights.append(0.0)
        weights[index] += weight
        of_row.append(index)
    return Group(group.names, group.facts, tuple(rows), tuple(weights)), of_row


_OTHER = object()


def rule_detail(rule: Rule, facts: LegFacts, groups: Sequence[Group], touched: Sequence[int]) -> RuleDetail:
    """Enumerate `touched` groups' rows for one rule: expectation, range and per-row expectations."""
    values = facts.values
    kind = facts.kind
    literals = _literals(rule)
    collapsed = [_collapsed(groups[g], literals) for g in touched]
    parts = [group for group, _ in collapsed]
    derived = any(set(g.facts) & _DERIVED_INPUTS for g in parts)
    conditional = [[0.0] * len(g.rows) for g in parts]
    expected = 0.0
    low = float("inf")
    high = float("-inf")
    # One working copy: every combination sets every enumerated fact, and the derived ones are recomputed.
    trial = dict(values)
    for combo in itertools.product(*(range(len(g.rows)) for g in parts)):
        weights = []
        for g, i in zip(parts, combo, strict=True):
            for name, value in zip(g.facts, g.rows[i], strict=True):
                trial[name] = value
            weights.append(g.weights[i])
        if derived:
            derive_targeting(trial)
        value = rule.evaluate_values(kind, trial)
        low = min(low, value)
        high = max(high, value)
        total = 1.0
        for w in weights:
            total *= w
        expected += total * value
        for k, i in enumerate(combo):
            others = 1.0
            for j, w in enumerate(weights):
                if j != k:
                    others *= w
            conditional[k][i] += others * value
    return RuleDetail(
        expected=expected,
        low=low,
        high=high,
        conditional=tuple(
            (groups[g].names, tuple(c[i] for i in of_row))
            for g, c, (_, of_row) in zip(touched, conditional, collapsed, strict=True)
        ),
    )


_DERIVED_INPUTS = frozenset(f for inputs in DERIVED_FACT_INPUTS.values() for f in inputs)


class Expectations:
    """Rule values of legs with fields left out, under one population's shares, with a bounded cache.

    `details(facts)` gives, per rule (rule order), None when the rule reads no left-out fact (its plain
    value applies) or its `RuleDetail`; and the leg's groups."""

    def __init__(self, ruleset: RuleSet, shares: PopulationShares, cache_size: int = 200_000) -> None:
        self.ruleset = ruleset
        self.shares = shares
        self._cache: dict[tuple, RuleDetail] = {}
        self._cache_size = cache_size
        self._facts_of = {name: frozenset(v.facts) for name, v in LEFT_OUT.items()}

    def details(self, facts: LegFacts) -> tuple[list[RuleDetail | None], list[Group]]:
        groups = groups_for(facts, self.shares)
        out: list[RuleDetail | None] = []
        values = facts.values
        for index, rule in enumerate(self.ruleset.rules):
            if facts.kind not in rule.applies_to:
                out.append(None)
                continue
            touched = [g for g, group in enumerate(groups) if not rule.closure.isdisjoint(group.facts)]
            if not touched:
                out.append(None)
                continue
            key = (
                index,
                facts.kind,
                tuple(values[n] for n in rule.closure_order),
                tuple(groups[g].key for g in touched),
            )
            detail = self._cache.get(key)
            if detail is None:
                detail = rule_detail(rule, facts, groups, touched)
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[key] = detail
            out.append(detail)
        return out, groups

    def values(self, facts: LegFacts) -> list[float]:
        """Each rule's value on the leg (rule order): plain where judged, else its expectation."""
        if not facts.unknown:
            return self.ruleset.values(facts)
        details, _ = self.details(facts)
        plain = self.ruleset.rules
        return [
            rule.evaluate(facts) if detail is None else detail.expected
            for rule, detail in zip(plain, details, strict=True)
        ]

    def row(self, facts: LegFacts) -> tuple[list[float], list[bool]]:
        """Each rule's value on the leg and whether it is judged to fire: a rule reading a left-out field
        fires when its lowest value is above zero (what an explanation lists, and a checklist counts)."""
        if not facts.unknown:
            plain = self.ruleset.values(facts)
            return plain, [v > 0 for v in plain]
        details, _ = self.details(facts)
        values: list[float] = []
        fired: list[bool] = []
        for rule, detail in zip(self.ruleset.rules, details, strict=True):
            if detail is None:
                value = rule.evaluate(facts)
                values.append(value)
                fired.append(value > 0)
            else:
                values.append(detail.expected)
                fired.append(detail.low > 0)
        return values, fired
