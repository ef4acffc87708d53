"""Charts drawn on the server as SVG: the waterfall of an assessment and the forest plot of the model.

Both are plain markup (no script, no inline styles: classes styled by the workspace's stylesheet), carry
a title and description for screen readers, and put their numbers in `data-` attributes so that a test
can read what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 760
LABEL_WIDTH = 330
VALUE_WIDTH = 110
ROW = 30
BAR = 18
TOP = 12
AXIS = 46


def logit(probability: float) -> float:
    """Log-odds of a probability (clamped away from 0 and 1)."""
    p = min(max(probability, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def expit(log_odds: float) -> float:
    """The probability of a log-odds."""
    return 1.0 / (1.0 + math.exp(-log_odds))


def percent(probability: float) -> str:
    """A probability as a percentage with three significant figures below 1%: 0.0123 → "1.23%", 0.0000512 →
    "0.00512%"."""
    value = probability * 100
    if value == 0:
        return "0%"
    digits = max(2, 1 - math.floor(math.log10(abs(value))) + 1) if value < 1 else 2
    return f"{value:.{min(digits, 6)}f}%"


@dataclass(frozen=True, slots=True)
class Step:
    """One factor's bar: from `start` to `end` on the log-odds axis; `contribution` is its own value."""

    factor_id: str
    title: str
    contribution: float
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Waterfall:
    """The steps from the baseline's log-odds to the score's; `scale` is how the steps were fitted."""

    baseline: float
    score: float
    steps: list[Step]
    scale: float


def waterfall_steps(baseline_probability: float, score_log_odds: float, factors: Sequence[dict]) -> Waterfall:
    """The waterfall of an assessment, one step per factor in the order given.

    A factor's contribution is its log-odds on the leg where it weighs most, and a trip's probability
    combines its legs; so the contributions need not add up exactly to the step from the baseline to the
    score. Each bar is its factor's share of that step (contribution × step ÷ sum of contributions), so
    the last bar ends at the score; the numbers shown are the contributions themselves.
    """
    start = logit(baseline_probability)
    total = sum(max(float(f["contribution"]), 0.0) for f in factors)
    span = score_log_odds - start
    scale = span / total if total > 0 else 1.0
    steps: list[Step] = []
    position = start
    for index, factor in enumerate(factors):
        contribution = float(factor["contribution"])
        width = max(contribution, 0.0) * scale
        end = score_log_odds if index == len(factors) - 1 and total > 0 else position + width
        steps.append(Step(factor["id"], factor.get("title") or factor["id"], contribution, position, end))
        position = end
    return Waterfall(baseline=start, score=score_log_odds, steps=steps, scale=scale)


def _ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values covering [low, high]."""
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + 1e-9:
        ticks.append(round(value, 6))
        value += step
    return ticks


class _Scale:
    def __init__(self, low: float, high: float, x0: float, x1: float) -> None:
        pad = max((high - low) * 0.04, 0.25)
        self.low, self.high = low - pad, high + pad
        self.x0, self.x1 = x0, x1

    def __call__(self, value: float) -> float:
        return round(self.x0 + (value - self.low) / (self.high - self.low) * (self.x1 - self.x0), 2)


def _text(x: float, y: float, text: str, css: str, anchor: str = "start") -> str:
    return f'<text x="{x}" y="{y}" class="{css}" text-anchor="{anchor}">{escape(text)}</text>'


def _clip(text: str, limit: int = 46) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def waterfall_svg(chart: Waterfall) -> Markup:
    """The waterfall as SVG: the baseline, one bar per factor, the score; log-odds axis with probabilities."""
    rows = len(chart.steps) + 2
    height = TOP + rows * ROW + AXIS
    points = [chart.baseline, chart.score] + [s.end for s in chart.steps]
    scale = _Scale(min(points), max(points), LABEL_WIDTH, WIDTH - VALUE_WIDTH)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart waterfall" viewBox="0 0 {WIDTH} {height}"'
        f' width="100%" role="img" aria-labelledby="wf-title wf-desc" data-baseline="{chart.baseline:.6f}"'
        f' data-score="{chart.score:.6f}" data-scale="{chart.scale:.6f}">',
        '<title id="wf-title">From the baseline to the score, factor by factor</title>',
        f'<desc id="wf-desc">Log-odds axis. The baseline is {chart.baseline:.2f} ({percent(expit(chart.baseline))});'
        f" {len(chart.steps)} factor{'s' if len(chart.steps) != 1 else ''} raise it to the score of"
        f" {chart.score:.2f} ({percent(expit(chart.score))}).</desc>",
    ]
    bottom = TOP + rows * ROW
    for tick in _ticks(scale.low, scale.high):
        x = scale(tick)
        out.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{bottom}" class="grid"/>')
        out.append(_text(x, bottom + 16, f"{tick:g}", "tick", "middle"))
        out.append(_text(x, bottom + 30, percent(expit(tick)), "tick tick-p", "middle"))
    out.append(_text(LABEL_WIDTH, bottom + 44, "log-odds (probability below)", "axis-label"))

    def marker(row: int, value: float, css: str, label: str, note: str) -> None:
        y = TOP + row * ROW
        x = scale(value)
        out.append(_text(8, y + ROW / 2 + 4, label, "row-label strong"))
        out.append(
            f'<rect x="{x - 3}" y="{y + (ROW - BAR) / 2}" width="6" height="{BAR}" class="{css}"'
            f' data-log-odds="{value:.6f}"/>'
        )
        out.append(_text(WIDTH - VALUE_WIDTH + 8, y + ROW / 2 + 4, note, "value"))

    marker(0, chart.baseline, "wf-baseline", "Baseline", f"{chart.baseline:.2f}")
    previous = chart.baseline
    for index, step in enumerate(chart.steps, start=1):
        y = TOP + index * ROW
        x_start, x_end = scale(step.start), scale(step.end)
        left, width = min(x_start, x_end), max(abs(x_end - x_start), 2.0)
        out.append(
            f'<line x1="{scale(previous)}" y1="{y - (ROW - BAR) / 2}" x2="{scale(previous)}"'
            f' y2="{y + (ROW - BAR) / 2}" class="connector"/>'
        )
        css = "wf-bar" + (" zero" if step.contribution <= 0 else "")
        out.append(
            f'<g class="wf-row"><title>{escape(step.title)}: contribution {step.contribution:+.2f} log-odds'
            f" (odds × {math.exp(step.contribution):.2f})</title>"
        )
        out.append(_text(8, y + ROW / 2 + 4, _clip(step.title), "row-label"))
        out.append(
            f'<rect x="{left}" y="{y + (ROW - BAR) / 2}" width="{round(width, 2)}" height="{BAR}" class="{css}"'
            f' data-factor="{escape(step.factor_id)}" data-start="{step.start:.6f}" data-end="{step.end:.6f}"'
            f' data-contribution="{step.contribution:.6f}" data-x-end="{x_end}"/>'
        )
        out.append(_text(WIDTH - VALUE_WIDTH + 8, y + ROW / 2 + 4, f"{step.contribution:+.2f}", "value"))
        out.append("</g>")
        previous = step.end
    marker(rows - 1, chart.score, "wf-score", "Score", f"{chart.score:.2f}")
    out.append(
        f'<line x1="{scale(chart.score)}" y1="{TOP + (rows - 1) * ROW}" x2="{scale(chart.score)}"'
        f' y2="{TOP + (rows - 1) * ROW - (ROW - BAR) / 2}" class="connector"/>'
    )
    out.append("</svg>")
    return Markup("".join(out))


# ---------------------------------------------------------------------------------------------
# Forest plot


@dataclass(frozen=True, slots=True)
class Estimate:
    """One coefficient of the model: the fitted value and interval, and its prior when the model has one."""

    feature: str
    title: str
    value: float
    interval: tuple[float, float] | None
    prior_mean: float | None = None
    prior_interval: tuple[float, float] | None = None
    grade: str | None = None


def forest_svg(estimates: Sequence[Estimate]) -> Markup:
    """Coefficients (log-odds) with their intervals, one row per feature; the prior under each when known."""
    has_prior = any(e.prior_mean is not None for e in estimates)
    values: list[float] = [0.0]
    for e in estimates:
        values.append(e.value)
        if e.interval:
            values.extend(e.interval)
        if e.prior_mean is not None:
            values.append(e.prior_mean)
        if e.prior_interval:
            values.extend(e.prior_interval)
    row = ROW if has_prior else 24
    height = TOP + len(estimates) * row + AXIS
    scale = _Scale(min(values), max(values), LABEL_WIDTH, WIDTH - VALUE_WIDTH)
    bottom = TOP + len(estimates) * row
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart forest" viewBox="0 0 {WIDTH} {height}" width="100%"'
        ' role="img" aria-labelledby="fp-title fp-desc">',
        '<title id="fp-title">Coefficients of the model with their intervals</title>',
        f'<desc id="fp-desc">{len(estimates)} coefficients on the log-odds scale: the fitted value with its'
        f" interval{', and the prior from the sources beneath it' if has_prior else ''}.</desc>",
    ]
    for tick in _ticks(scale.low, scale.high):
        x = scale(tick)
        out.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{bottom}" class="grid"/>')
        out.append(_text(x, bottom + 16, f"{tick:g}", "tick", "middle"))
    zero = scale(0.0)
    out.append(f'<line x1="{zero}" y1="{TOP}" x2="{zero}" y2="{bottom}" class="zero-line"/>')
    out.append(_text(LABEL_WIDTH, bottom + 34, "log-odds (0: no effect)", "axis-label"))
    for index, e in enumerate(estimates):
        y = TOP + index * row
        mid = y + (row / 2 - 4 if has_prior else row / 2)
        out.append(f'<g class="fp-row" data-feature="{escape(e.feature)}"><title>{escape(e.title)}</title>')
        out.append(_text(8, mid + 4, _clip(e.title), "row-label"))
        if e.interval:
            lo, hi = e.interval
            out.append(f'<line x1="{scale(lo)}" y1="{mid}" x2="{scale(hi)}" y2="{mid}" class="fp-interval"/>')
        out.append(
            f'<circle cx="{scale(e.value)}" cy="{mid}" r="4.5" class="fp-posterior" data-value="{e.value:.6f}"/>'
        )
        if e.prior_mean is not None:
            py = mid + 9
            if e.prior_interval:
                lo, hi = e.prior_interval
                out.append(f'<line x1="{scale(lo)}" y1="{py}" x2="{scale(hi)}" y2="{py}" class="fp-prior-interval"/>')
            out.append(
                f'<rect x="{scale(e.prior_mean) - 3.5}" y="{py - 3.5}" width="7" height="7" class="fp-prior"'
                f' data-value="{e.prior_mean:.6f}"/>'
            )
        out.append(_text(WIDTH - VALUE_WIDTH + 8, mid + 4, f"{e.value:.2f}", "value"))
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))
