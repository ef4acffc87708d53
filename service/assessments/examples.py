"""Examples shown in the OpenAPI document (a test checks each against the published schema)."""

from __future__ import annotations

from typing import Any

REQUEST_EXAMPLE: dict[str, Any] = {
    "traveler": {
        "reference": "E-10442",
        "citizenships": ["CA"],
        "birth_country": "CN",
        "former_citizenships": ["CN"],
        "occupation": "business_executive",
        "employer": {"name": "Rio Tinto", "sector": "mining_resources"},
        "public_profile": {"criticizes_destination_government": False, "activism": []},
        "affiliations": [],
        "family_ties": [
            {"relation": "parent", "sought_by_destination_authorities": True, "lives_in_destination": False}
        ],
        "relatives_in_destination": True,
        "legal_exposure": {
            "civil_or_commercial_dispute": False,
            "tax_dispute": False,
            "criminal_investigation": False,
            "sought_by_destination_authorities": False,
        },
    },
    "trip": {
        "purpose": "business",
        "legs": [
            {"country": "TH", "arrive": "2018-12-04", "depart": "2018-12-05", "transit": True},
            {"country": "CN", "region": "Beijing", "arrive": "2018-12-05", "depart": "2018-12-20"},
        ],
        "entry_document": "CA",
    },
}

MINIMAL_REQUEST_EXAMPLE: dict[str, Any] = {
    "traveler": {"citizenships": ["DE"]},
    "trip": {"legs": [{"country": "HK", "arrive": "2025-03-01", "depart": "2025-03-04"}]},
}

RESPONSE_EXAMPLE: dict[str, Any] = {
    "id": "01938c2e-5b7a-7c3e-9d41-6f0a2b8c1d2e",
    "created_at": "2025-01-15T09:30:12.123456Z",
    "status": "scored",
    "score": {"probability": 0.0123, "interval": [0.004, 0.031], "band": "high", "log_odds": -4.3855},
    "baseline": {"probability": 0.0002},
    "factors": [
        {
            "id": "home_country_extradition_case",
            "title": "The traveller's home country holds someone the destination wants back",
            "value": 1.0,
            "coefficient": 2.08,
            "contribution": 2.08,
            "odds_multiplier": 8.0,
            "leg": "CN",
            "reason": "CA holds a person CN wants returned: Meng Wanzhou held in Canada on a US extradition"
            " request (situation ca-cn-meng-extradition, since 2018-12-01 to 2021-09-24).",
            "evidence": [
                {
                    "source": "csis-kennedy-beijing-suffers-major-loss",
                    "quote": "the detention of two Canadians in China",
                }
            ],
            "derived_from": ["situation:ca-cn-meng-extradition"],
        }
    ],
    "legs": [
        {"country": "TH", "arrive": "2018-12-04", "depart": "2018-12-05", "assessed": True, "probability": 0.0002},
        {"country": "CN", "arrive": "2018-12-05", "depart": "2018-12-20", "assessed": True, "probability": 0.0121},
    ],
    "mitigations": ["Postpone non-essential travel until the extradition case is resolved."],
    "review": {"required": True, "state": "pending", "policy_version": 0, "since": "2025-01-15T09:30:12.123456Z"},
    "versions": {"model": "m-3f9c2a1b", "rules": "r-8d21e0c4", "reference_data": "ref-5a6b7c8d9e0f"},
    "covered_destinations": ["CN", "HK", "MO"],
    "possible_employer_matches": [],
}

PAGE_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "id": "01938c2e-5b7a-7c3e-9d41-6f0a2b8c1d2e",
            "created_at": "2025-01-15T09:30:12.123456Z",
            "status": "scored",
            "band": "high",
            "probability": 0.0123,
            "traveler_reference": "E-10442",
            "trip_start": "2018-12-04",
            "trip_end": "2018-12-20",
            "model_version": "m-3f9c2a1b",
            "current_revision": 2,
            "changed_at": "2025-02-01T08:00:00Z",
            "review_state": "approved_with_conditions",
        }
    ],
    "next_cursor": "WyIyMDI1LTAxLTE1VDA5OjMwOjEyLjEyMzQ1NloiLCIwMTkzOGMyZSJd",
}
