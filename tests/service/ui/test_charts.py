"""The server-drawn charts and the model page's content, from data alone."""

from __future__ import annotations

import json
import math
import re

import pytest

from service.ui.charts import Estimate, expit, forest_svg, logit, percent, waterfall_steps, waterfall_svg
from service.ui.views import model_view


def _factors(*contributions: float) -> list[dict[str, object]]:
    return [{"id": f"f{i}", "title": f"Factor {i}", "contribution": c} for i, c in enumerate(contributions)]


def test_contributions_that_add_up_are_drawn_as_they_are() -> None:
    baseline = 0.001
    factors = _factors(2.0, 1.0, 0.0)
    score = logit(baseline) + 3.0
    chart = waterfall_steps(baseline, score, factors)
    assert chart.scale == pytest.approx(1.0)
    assert [(s.start - chart.baseline, s.end - chart.baseline) for s in chart.steps] == [
        pytest.approx((0.0, 2.0)),
        pytest.approx((2.0, 3.0)),
        pytest.approx((3.0, 3.0)),
    ]
    assert chart.steps[-1].end == score


def test_across_legs_the_bars_are_scaled_to_end_at_the_score() -> None:
    # A second leg's baseline lifts the trip's baseline: the factors' own sum overshoots the step.
    baseline, score = 0.0015, -0.12
    chart = waterfall_steps(baseline, score, _factors(6.4, 3.7, 2.6))
    assert chart.scale == pytest.approx((score - logit(baseline)) / 12.7)
    assert chart.steps[-1].end == score
    widths = [s.end - s.start for s in chart.steps]
    assert widths[0] / widths[1] == pytest.approx(6.4 / 3.7)
    assert [s.contribution for s in chart.steps] == [6.4, 3.7, 2.6]


def test_no_factor_means_the_score_is_the_baseline() -> None:
    chart = waterfall_steps(0.0002, logit(0.0002), [])
    assert chart.steps == [] and chart.score == pytest.approx(chart.baseline)
    assert "0 factors" in waterfall_svg(chart)


def test_the_svg_draws_one_bar_per_factor_and_the_last_ends_on_the_score_marker() -> None:
    chart = waterfall_steps(0.0015, -0.12, _factors(6.4, 3.7, 0.0))
    svg = str(waterfall_svg(chart))
    bars = re.findall(r'<rect [^>]*class="wf-bar[^"]*"[^>]*>', svg)
    assert len(bars) == 3
    last_x_end = float(re.search(r'data-x-end="([^"]+)"', bars[-1]).group(1))
    marker_x = float(re.search(r'<rect x="([^"]+)"[^>]*class="wf-score"', svg).group(1)) + 3
    assert last_x_end == pytest.approx(marker_x, abs=0.01)
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert "style=" not in svg and "<script" not in svg


def test_titles_are_escaped_in_the_svg() -> None:
    chart = waterfall_steps(0.01, logit(0.01) + 1, [{"id": "x", "title": "<b>&", "contribution": 1.0}])
    svg = str(waterfall_svg(chart))
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg


def test_percentages_keep_small_probabilities_readable() -> None:
    assert percent(0.4710) == "47.10%"
    assert percent(0.00143) == "0.143%"
    assert percent(0.0000512) == "0.00512%"
    assert percent(0.0) == "0%"
    assert expit(logit(0.25)) == pytest.approx(0.25)


def _card() -> dict[str, object]:
    return {
        "version": "m1",
        "factors": [
            {"id": "a", "title": "A", "coefficient": 2.0, "interval": [math.exp(1.0), math.exp(3.0)]},
            {"id": "b", "title": "B", "coefficient": 0.5, "interval": [1.0, math.exp(1.5)]},
        ],
        "metrics": {"roc_auc": 0.9},
    }


def test_the_model_page_falls_back_to_the_card_intervals_without_priors() -> None:
    view = model_view(_card(), {})
    assert [e.feature for e in view["estimates"]] == ["a", "b"]
    assert view["estimates"][0].interval == pytest.approx((1.0, 3.0))
    assert not view["has_priors"] and view["validation"] is None
    svg = str(view["forest"])
    assert svg.count('class="fp-posterior"') == 2 and 'class="fp-prior"' not in svg


def test_the_model_page_shows_the_bundled_models_priors_and_validation() -> None:
    from models.assess import Assessor

    assessor = Assessor.load()
    card = json.loads(json.dumps(assessor.model_card()))
    view = model_view(card, assessor.model.document)
    assert view["has_priors"]
    by_feature = {e.feature: e for e in view["estimates"]}
    for factor in card["factors"]:
        estimate = by_feature[factor["id"]]
        assert estimate.grade == factor["prior"]["grade"]
        assert estimate.prior_mean == pytest.approx(factor["prior"]["mean"])
        assert estimate.prior_interval == pytest.approx(tuple(factor["prior"]["interval"]))
    assert view["validation"]["leave_one_event_out"]["figures"]["model_auc"]["value"] == card["metrics"]["roc_auc"]
    loeo = view["validation_rows"][0]
    assert loeo["name"] == "leave-one-event-out"
    assert loeo["model_auc"]["text"] == f"{card['metrics']['roc_auc']:.3f}" and loeo["model_auc"]["interval"]
    # Each target is marked met or missed as the card says.
    targets = card["validation"]["leave_one_event_out"]["targets"]
    assert loeo["incidents_high_or_severe"]["met"] is targets["incidents_high_or_severe"]["met"]
    svg = str(view["forest"])
    assert svg.count('class="fp-prior"') == len(card["factors"])
    # The reference population: every figure with its basis, and the reporting behind the sourced ones.
    rows = {row["name"]: row for row in view["population"]}
    assert len(rows) == len(card["data"]["population"])
    assert rows["citizenships"]["basis"] == "reporting"
    # 0.6671 of 26.77 million trips (the itemised 2014 countries and Taiwan's residents) are Canadian.
    assert "CA 2.5%" in rows["citizenships"]["figure"]
    assert rows["citizenships"]["figure"].startswith("TW 20.1%, KR 15.6%")
    assert any("2014" in e["source_title"] for e in rows["citizenships"]["evidence_items"])
    assert "8% of the usual volume" in rows["travel volume"]["figure"]
    assert rows["activism share"]["basis"] == "assumption" and not rows["activism share"]["evidence_items"]


def test_the_forest_plot_marks_zero_and_every_row() -> None:
    svg = str(forest_svg([Estimate("x", "X", 1.0, (0.5, 1.5)), Estimate("y", "Y", 0.0, None)]))
    assert svg.count('class="fp-row"') == 2 and 'class="zero-line"' in svg


def test_quotes_from_public_reporting_show_the_reports_title() -> None:
    from risk_rules.sources import load_reporting
    from service.ui.views import evidence_items

    report_id, report = next(iter(load_reporting().items()))
    (item,) = evidence_items([{"source": report_id, "quote": "..."}])
    assert report.title in item["source_title"] and report.publisher in item["source_title"]
