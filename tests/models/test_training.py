"""Training: the Bayesian fit, its priors, determinism, the prior correction and the artifact."""

import json
import math

import numpy as np
import pytest

from models.artifact import THIRD_COUNTRY_FEATURE, artifact_from_document, load_artifact
from models.assess import Assessor
from models.training import (
    content_hash,
    fit_posterior,
    prior_correction,
    priors_from_rules,
    reproduction_differences,
    train_model,
    version_of,
    write_model,
)
from risk_rules.priors import PRIOR_GRADES
from risk_rules.ruleset import bundled_rules


def test_training_is_deterministic() -> None:
    first, _, _ = train_model(controls=600, draws=10, seed=11, validate=False)
    second, _, _ = train_model(controls=600, draws=10, seed=11, validate=False)
    assert content_hash(first) == content_hash(second)
    assert first["version"] == second["version"]
    other, _, _ = train_model(controls=600, draws=10, seed=12, validate=False)
    assert content_hash(other) != content_hash(first)


def test_prior_correction_moves_the_intercept_exactly(small_model) -> None:
    document, _, data = small_model
    tau = document["base_rate"]["value"]
    ybar = float(data.y.mean())
    expected = math.log((1 - tau) / tau * ybar / (1 - ybar))
    assert document["intercept_sample"] - document["intercept"] == pytest.approx(expected, abs=2e-6)
    assert prior_correction(ybar, tau) == pytest.approx(expected)


def test_base_rate_is_settable_and_shifts_only_the_intercept() -> None:
    low, _, _ = train_model(controls=600, draws=10, seed=11, base_rate=1e-5, validate=False)
    high, _, data = train_model(controls=600, draws=10, seed=11, base_rate=1e-3, validate=False)
    assert low["coefficients"] == high["coefficients"]
    ybar = float(data.y.mean())
    shift = prior_correction(ybar, 1e-5) - prior_correction(ybar, 1e-3)
    assert high["intercept"] - low["intercept"] == pytest.approx(shift, abs=2e-6)


def test_artifact_scores_like_the_posterior_mode(small_model) -> None:
    document, posterior, data = small_model
    artifact = artifact_from_document(json.loads(json.dumps(document)))
    ours = document["intercept_sample"] + data.x @ artifact.coefficients
    np.testing.assert_allclose(ours, posterior.linear(data.x), atol=1e-4)


def test_the_fit_is_the_posterior_mode(small_model) -> None:
    """At the mode the gradient of the log posterior vanishes, except where a prior's bound holds it at 0."""
    _, posterior, data = small_model
    priors = priors_from_rules(bundled_rules())
    x1 = np.hstack([np.ones((len(data.y), 1)), data.x])
    w = np.concatenate([[posterior.intercept], posterior.coefficients])
    p = 1 / (1 + np.exp(-(x1 @ w)))
    mean = np.concatenate([[0.0], priors.mean])
    precision = np.concatenate([[1 / 100.0], 1 / priors.sd**2])
    gradient = x1.T @ (p - data.y) + precision * (w - mean)
    at_lower = np.concatenate([[False], posterior.coefficients <= priors.lower + 1e-9])
    at_upper = np.concatenate([[False], posterior.coefficients >= priors.upper - 1e-9])
    assert np.all(np.abs(gradient[~(at_lower | at_upper)]) < 1e-6)
    # At a bound the posterior would like to go beyond it: the gradient points outwards.
    assert np.all(gradient[at_lower] >= -1e-6)
    assert np.all(gradient[at_upper] <= 1e-6)


def test_priors_pull_a_factor_without_cases_to_its_prior() -> None:
    """With no case and no control carrying a factor, the posterior mode is the prior's location."""
    priors = priors_from_rules(bundled_rules())
    rng = np.random.default_rng(0)
    x = np.zeros((400, len(priors.features)))
    x[:, 0] = rng.random(400) < 0.3
    y = (rng.random(400) < 0.1 + 0.3 * x[:, 0]).astype(int)
    posterior = fit_posterior(x, y, priors)
    for j in range(1, len(priors.features)):
        assert posterior.coefficients[j] == pytest.approx(max(priors.mean[j], priors.lower[j]), abs=1e-4)


def test_risk_factors_never_lower_risk(small_model) -> None:
    document, _, _ = small_model
    for name, value in zip(document["features"], document["coefficients"], strict=True):
        if name != THIRD_COUNTRY_FEATURE:
            assert value >= 0, name
    draws = np.asarray(document["posterior_draws"]["coefficients"])
    rules = [j for j, name in enumerate(document["features"]) if name != THIRD_COUNTRY_FEATURE]
    assert (draws[:, rules] >= 0).all()


def test_card_shows_where_each_weight_comes_from(small_model) -> None:
    document, _, data = small_model
    ruleset = bundled_rules()
    assert set(document["factors"]) == set(document["features"])
    for rule in ruleset.rules:
        factor = document["factors"][rule.id]
        grade = PRIOR_GRADES[factor["prior"]["grade"]]
        assert factor["prior"]["grade"] == rule.prior.grade.name
        assert factor["prior"]["mean"] == pytest.approx(grade.expected(), abs=1e-6)
        lo, hi = factor["prior"]["interval"]
        assert 0 <= lo < factor["prior"]["mean"] < hi
        column = document["features"].index(rule.id)
        assert factor["cases_fired"] == int(data.fired[data.y == 1, column].sum())
        assert 0 <= factor["cases_fired"] <= factor["cases_judged"] + int((data.y == 1).sum())
        post = factor["posterior"]
        assert post["interval"][0] <= post["mean"] <= post["interval"][1]
        moved = abs(post["mean"] - factor["prior"]["mean"]) > factor["prior"]["sd"]
        assert (factor["moved"] is not None) == moved
    assert document["data"]["incidents"] == int(data.y.sum())
    assert document["limitations"] and document["base_rate"]["provenance"]
    assert set(document["priors"]["grades"]) == set(PRIOR_GRADES)


def test_written_artifacts_stay_loadable(small_model, tmp_path) -> None:
    document, _, _ = small_model
    older, _, _ = train_model(controls=600, draws=10, seed=3, validate=False)
    write_model(older, tmp_path, make_active=True)
    write_model(document, tmp_path, make_active=True)
    assert (tmp_path / f"model-{document['version']}.card.md").read_text().startswith("# Model card")
    assert (
        json.loads((tmp_path / f"model-{document['version']}.card.json").read_text())["version"] == document["version"]
    )
    assert load_artifact(older["version"], tmp_path).version == older["version"]
    assert Assessor.load(model_directory=tmp_path).model.version == document["version"]
    assert Assessor.load(older["version"], model_directory=tmp_path).model.version == older["version"]


def test_posterior_draws_are_stored(small_model) -> None:
    document, _, _ = small_model
    draws = document["posterior_draws"]
    assert draws["n"] == 20
    assert np.asarray(draws["coefficients"]).shape == (20, len(bundled_rules().rules) + 1)


def test_bundled_model_is_what_training_makes_from_the_bundled_data(retrained) -> None:
    """The shipped artifact is reproducible: the same inputs give the same version, and every number of a
    retrain (coefficients, posterior draws, both validation schemes) agrees within the stated tolerance."""
    bundled = Assessor.load().model
    document, _ = retrained
    assert document["rules_version"] == bundled.rules_version == bundled_rules().version
    assert document["version"] == bundled.version == version_of(document["inputs"])
    assert reproduction_differences(bundled.document, document) == []


# Feature groups as numpy 2.4 names them, and the single features of earlier numpy (unknown names are ignored).
WIDE_VECTOR_FEATURES = ("X86_V4", "X86_V3", "AVX512F", "AVX512CD", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL")
WIDE_VECTOR_FEATURES += ("AVX512_ICL", "AVX512_SPR")
WIDE_VECTOR_FEATURES += ("AVX2", "FMA3")


def _retrain_in_a_process(environment: dict[str, str]) -> dict:
    import os
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from models.training import train_model\n"
        "document, _, _ = train_model(validate=False)\n"
        "json.dump(document, sys.stdout)\n"
    )
    env = {**os.environ, **environment}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "environment",
    [
        # numpy without its wider vector instructions (names a CPU lacks are ignored)
        {"NPY_DISABLE_CPU_FEATURES": " ".join(WIDE_VECTOR_FEATURES)},
        # OpenBLAS with another core's kernels
        {"OPENBLAS_CORETYPE": "Prescott"},
    ],
    ids=["fewer-vector-features", "another-blas-core"],
)
def test_the_bundled_model_reproduces_on_a_cpu_with_other_features(environment) -> None:
    """A retrain with other vector instructions and BLAS kernels gives the bundled version and numbers."""
    bundled = Assessor.load().model
    document = _retrain_in_a_process(environment)
    assert document["version"] == bundled.version
    assert reproduction_differences(bundled.document, document) == []


def test_the_version_names_the_inputs_not_the_floating_point_outputs() -> None:
    first, _, _ = train_model(controls=600, draws=10, seed=11, validate=False)
    assert first["version"] == version_of(first["inputs"])
    tampered = {**first, "coefficients": [c + 1e-9 for c in first["coefficients"]]}
    assert version_of(tampered["inputs"]) == first["version"]  # outputs do not enter it
    assert reproduction_differences(first, tampered) == []  # and a last-bit difference is within tolerance
    moved = {**first, "coefficients": [c + 1e-3 for c in first["coefficients"]]}
    assert any("coefficients" in line for line in reproduction_differences(first, moved))
    other, _, _ = train_model(controls=600, draws=10, seed=12, validate=False)
    assert other["version"] != first["version"]
    assert "inputs differ (seed)" in reproduction_differences(first, other)[0]
