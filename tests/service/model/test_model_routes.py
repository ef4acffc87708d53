"""GET /v1/factors and GET /v1/model."""

from __future__ import annotations

import math
from typing import Any

from fastapi.testclient import TestClient

from service.model.schemas import FactorList, ModelCard
from tests.service.test_openapi import schema_errors


def test_factors_for_every_role(client: TestClient, tenant: Any) -> None:
    for role in ("requester", "reviewer", "analyst", "admin"):
        response = client.get("/v1/factors", headers=tenant.auth(role))
        assert response.status_code == 200, response.text
    body = response.json()
    FactorList.model_validate(body)
    assert body["items"]
    for factor in body["items"]:
        assert factor["evidence"] and all(e["source"] and e["quote"] for e in factor["evidence"])
        assert math.isclose(factor["odds_multiplier"], math.exp(factor["coefficient"]), rel_tol=1e-4)
        low, high = factor["interval"]
        assert low <= high
        # Where each weight comes from: the prior the sources give it, the posterior, the cases.
        prior = factor["prior"]
        assert prior["grade"] in ("strong", "moderate", "weak") and prior["rationale"]
        assert prior["evidence"] or prior["unsupported"]
        assert prior["interval"][0] <= prior["mean"] <= prior["interval"][1]
        assert factor["posterior"]["interval"][0] <= factor["posterior"]["mean"] <= factor["posterior"]["interval"][1]
        assert isinstance(factor["cases_fired"], int)
    document = client.get("/openapi.json").json()
    schema = document["paths"]["/v1/factors"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema_errors(document, schema, body) == []


def test_model_card(client: TestClient, tenant: Any) -> None:
    response = client.get("/v1/model", headers=tenant.auth("analyst"))
    assert response.status_code == 200, response.text
    card = response.json()
    ModelCard.model_validate(card)
    factors = client.get("/v1/factors", headers=tenant.auth("analyst")).json()
    assert card["version"] == factors["model_version"]
    assert {f["id"] for f in card["factors"]} == {f["id"] for f in factors["items"]}
    # The honest figures lead: held-out events against the checklist, then the temporal backtest.
    for scheme in ("leave_one_event_out", "temporal_backtest"):
        result = card["validation"][scheme]
        figures = result["figures"]
        assert {"model_auc", "checklist_auc", "incidents_high_or_severe", "controls_above_elevated"} <= set(figures)
        for figure in figures.values():
            # Every figure with its 90% interval from a bootstrap over events, and its spread over draws.
            assert figure["interval_90"][0] <= figure["value"] <= figure["interval_90"][1] or figure["by_draw"]
        assert {"incidents_high_or_severe", "controls_above_elevated", "auc_difference"} == set(result["targets"])
        assert result["priors"]["grades"]
    loeo = card["validation"]["leave_one_event_out"]["figures"]
    assert card["metrics"]["roc_auc"] == loeo["model_auc"]["value"]
    assert card["metrics"]["roc_auc_interval_90"] == loeo["model_auc"]["interval_90"]
    assert set(card["priors"]["grades"]) == {"strong", "moderate", "weak"}


def test_factors_need_a_key(client: TestClient) -> None:
    assert client.get("/v1/factors").status_code == 401
    assert client.get("/v1/model").status_code == 401
