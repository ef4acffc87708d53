import pytest

from risk_rules.expr import ExpressionError, compile_expression

TYPES = {"flag": "bool", "days": "number", "job": "text", "tags": "set"}
FACTS = {"flag": True, "days": 30.0, "job": "journalist", "tags": frozenset({"democracy", "labor"})}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("flag and days > 14", True),
        ("not flag or days < 10", False),
        ("job in {'journalist', 'academic'}", True),
        ("job not in ['journalist']", False),
        ("'labor' in tags", True),
        ("any_of(tags, {'tibet', 'democracy'})", True),
        ("any_of(tags, {'tibet'})", False),
        ("10 < days <= 30", True),
        ("count(tags) == 2", True),
    ],
)
def test_conditions_evaluate(source: str, expected: bool) -> None:
    compiled = compile_expression(source, TYPES)
    assert compiled.type == "bool"
    assert compiled.evaluate(FACTS) is expected


def test_values_are_numbers() -> None:
    compiled = compile_expression("min(1, (days - 14) / 166)", TYPES)
    assert compiled.type == "number"
    assert compiled.evaluate(FACTS) == pytest.approx(16 / 166)
    assert compile_expression("1 if flag else 0.6", TYPES).evaluate({**FACTS, "flag": False}) == 0.6


def test_names_are_collected() -> None:
    assert compile_expression("flag and job == 'x'", TYPES).names == {"flag", "job"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("unknown_fact", "unknown fact 'unknown_fact'"),
        ("days and flag", "and/or operand must be bool"),
        ("job > 3", "cannot compare text with number"),
        ("job < 'x'", "ordering comparisons need numbers"),
        ("tags in job", "'in' needs a text on the left and a set on the right"),
        ("__import__('os')", "unknown function '__import__'"),
        ("flag.real", "unsupported syntax"),
        ("[x for x in tags]", "unsupported syntax"),
        ("flag and", "cannot parse"),
        ("1 if flag else 'x'", "both branches"),
    ],
)
def test_bad_expressions_are_refused(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        compile_expression(source, TYPES)
