"""Training: determinism, the prior correction, constraints, and artifact/scikit-learn agreement."""

import json
import math

import numpy as np
import pytest

from models.artifact import THIRD_COUNTRY_FEATURE, artifact_from_document, load_artifact
from models.assess import Assessor
from models.training import content_hash, prior_correction, train_model, write_model
from risk_rules.ruleset import bundled_rules


def test_training_is_deterministic() -> None:
    first, _, _ = train_model(controls=600, bootstrap=10, seed=11)
    second, _, _ = train_model(controls=600, bootstrap=10, seed=11)
    assert content_hash(first) == content_hash(second)
    assert first["version"] == second["version"]
    other, _, _ = train_model(controls=600, bootstrap=10, seed=12)
    assert content_hash(other) != content_hash(first)


def test_prior_correction_moves_the_intercept_exactly(small_model) -> None:
    document, _, data = small_model
    tau = document["base_rate"]["value"]
    ybar = float(data.y.mean())
    expected = math.log((1 - tau) / tau * ybar / (1 - ybar))
    assert document["intercept_sample"] - document["intercept"] == pytest.approx(expected, abs=1e-7)
    assert prior_correction(ybar, tau) == pytest.approx(expected)


def test_base_rate_is_settable_and_shifts_only_the_intercept() -> None:
    low, _, _ = train_model(controls=600, bootstrap=10, seed=11, base_rate=1e-5)
    high, _, data = train_model(controls=600, bootstrap=10, seed=11, base_rate=1e-3)
    assert low["coefficients"] == high["coefficients"]
    ybar = float(data.y.mean())
    shift = prior_correction(ybar, 1e-5) - prior_correction(ybar, 1e-3)
    assert high["intercept"] - low["intercept"] == pytest.approx(shift, abs=1e-7)


def test_artifact_scores_like_the_fitted_sklearn_model(small_model) -> None:
    document, fitted, data = small_model
    artifact = artifact_from_document(json.loads(json.dumps(document)))
    coef = artifact.coefficients
    # The fitted estimator saw only the columns left after the constraint refits.
    zeroed = {c["feature"] for c in document["constraints"]}
    kept = [j for j, name in enumerate(document["features"]) if name not in zeroed]
    assert fitted.coef_.shape[1] == len(kept)
    expected = fitted.predict_proba(data.x[:, kept])[:, 1]
    ours = 1 / (1 + np.exp(-(document["intercept_sample"] + data.x @ coef)))
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-12)


def test_risk_factors_never_lower_risk(small_model) -> None:
    document, _, _ = small_model
    for name, value in zip(document["features"], document["coefficients"], strict=True):
        if name != THIRD_COUNTRY_FEATURE:
            assert value >= 0, name
    for constraint in document["constraints"]:
        assert document["coefficients"][document["features"].index(constraint["feature"])] == 0


def test_card_reports_data_metrics_and_limitations(small_model) -> None:
    document, _, data = small_model
    assert document["data"]["incidents"] == int(data.y.sum())
    assert document["data"]["controls"] > 0
    assert 0.5 < document["metrics"]["roc_auc"] <= 1
    assert "group" in document["metrics"]["scheme"]
    assert document["metrics"]["calibration_deciles"]
    assert document["limitations"]
    assert document["base_rate"]["provenance"]
    assert set(document["coefficient_intervals"]) == set(document["features"])


def test_written_artifacts_stay_loadable(small_model, tmp_path) -> None:
    document, _, _ = small_model
    older, _, _ = train_model(controls=600, bootstrap=10, seed=3)
    write_model(older, tmp_path, make_active=True)
    write_model(document, tmp_path, make_active=True)
    assert (tmp_path / f"model-{document['version']}.card.md").read_text().startswith("# Model card")
    assert (
        json.loads((tmp_path / f"model-{document['version']}.card.json").read_text())["version"] == document["version"]
    )
    assert load_artifact(older["version"], tmp_path).version == older["version"]
    assert Assessor.load(model_directory=tmp_path).model.version == document["version"]
    assert Assessor.load(older["version"], model_directory=tmp_path).model.version == older["version"]


def test_bootstrap_draws_are_stored(small_model) -> None:
    document, _, _ = small_model
    boot = document["bootstrap"]
    assert boot["n"] == 20
    assert np.asarray(boot["coefficients"]).shape == (20, len(bundled_rules().rules) + 1)


def test_bundled_model_is_what_training_makes_from_the_bundled_data() -> None:
    """The shipped artifact is reproducible: same data, rules, reference data and seed, same version."""
    bundled = Assessor.load().model
    retrained, _, _ = train_model()
    assert retrained["version"] == bundled.version
    assert retrained["rules_version"] == bundled.rules_version == bundled_rules().version
