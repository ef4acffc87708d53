"""The bare FastAPI app the service is measured against: same request schema, same response size.

It validates the body with the contract's own `AssessmentRequest` and returns, through FastAPI's default
response path (`response_model`), the service's response to the same body (from `travelrisk assess`) with
a new id and time: the framework's cost for this request and response, without scoring, authentication,
storage or logs.

    BARE_RESPONSE=response.json uvicorn benchmarks.http.bare_app:app --port 18001 --no-access-log
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from typing import Any

from fastapi import FastAPI

from risk_rules.forms import AssessmentRequest, AssessmentResponse

with open(os.environ.get("BARE_RESPONSE", "response.json"), encoding="utf-8") as handle:
    TEMPLATE: dict[str, Any] = json.load(handle)

app = FastAPI(title="bare baseline")


@app.post("/v1/assessments", status_code=201, response_model=AssessmentResponse)
def create(request: AssessmentRequest) -> dict[str, Any]:
    return {**TEMPLATE, "id": str(uuid.uuid4()), "created_at": dt.datetime.now(dt.UTC)}
