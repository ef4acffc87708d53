"""Schemas of the destinations resource: the profiles in the bundled file's schema, with their revision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from risk_rules.reference import DestinationIn, ThirdCountryIn


class Destination(DestinationIn):
    """A destination the service scores: whom it counts as its own nationals, whether it recognises dual
    nationality, the laws the sources name (exit bans, reach over conduct abroad), regions with their own
    risk, and whose situations reach it (`situations_from`: Beijing is the party to disputes over HK and
    MO). Each statement cites its source."""

    revision: int = Field(description="1 when loaded, then one more for each change.")
    updated_at: dt.datetime


class ThirdCountry(ThirdCountryIn):
    """A country a trip may pass through or stay in: its extradition and mutual-legal-assistance treaties
    with the destinations, since when, and documented forced returns to them, each citing its source."""

    revision: int = Field(description="1 when loaded, then one more for each change.")
    updated_at: dt.datetime


class ThirdCountryPut(ThirdCountryIn):
    """A third country's whole profile, as an analyst records it: `code` must be the path's."""


class DestinationList(BaseModel):
    """What the service covers: the destinations it scores, and the third countries it knows of."""

    items: list[Destination] = Field(description="The destinations scored, by code.")
    third_countries: list[ThirdCountry] = Field(description="Transit and stay countries with a profile, by code.")


_CITATION = {
    "source": "brookings-long-arm-of-the-law",
    "quote": "In the past few years, China has expanded its ability to police not just Chinese nationals overseas,"
    " but to detain and repatriate dual nationals and Taiwan residents as well.",
    "title": None,
    "url": None,
    "date": None,
}
DESTINATION_EXAMPLE: dict[str, Any] = {
    "code": "MO",
    "name": "Macao Special Administrative Region of the People's Republic of China",
    "nationality_group": ["CN", "HK", "MO"],
    "situations_from": ["CN", "MO"],
    "recognises_dual_nationality": False,
    "dual_nationality_sources": [_CITATION],
    "laws": [],
    "regions": [],
    "sources": [],
    "revision": 1,
    "updated_at": "2026-03-02T09:14:05.120000Z",
}
THIRD_COUNTRY_EXAMPLE: dict[str, Any] = {
    "code": "TH",
    "name": "Thailand",
    "extradition_treaties": [],
    "mutual_legal_assistance": [],
    "forced_returns": [
        {
            "destination": "CN",
            "occurred_on": "2016-01-01",
            "date_precision": "month",
            "kind": "rendition",
            "description": "Journalist Li Xin forcibly returned from Thailand by Chinese special operations, with"
            " Thailand's apparent consent (January 2016)",
            "sources": [
                {
                    **_CITATION,
                    "source": "merics-chinas-global-law-enforcement-drive",
                    "quote": "With Thailand’s apparent consent, for instance, Chinese special ops forcibly returned"
                    " journalist Li Xin, who went missing in Thailand in January 2016",
                }
            ],
        }
    ],
    "revision": 1,
    "updated_at": "2026-03-02T09:14:05.120000Z",
}
LIST_EXAMPLE: dict[str, Any] = {"items": [DESTINATION_EXAMPLE], "third_countries": [THIRD_COUNTRY_EXAMPLE]}
THIRD_COUNTRY_PUT_EXAMPLE: dict[str, Any] = {
    "code": "KG",
    "name": "Kyrgyzstan",
    "extradition_treaties": [],
    "mutual_legal_assistance": [],
    "forced_returns": [
        {
            "destination": "CN",
            "occurred_on": "2026-02-01",
            "date_precision": "month",
            "kind": "refoulement",
            "description": "Example: a documented return an analyst records, with the publication it rests on",
            "sources": [
                {"title": "Analyst note on the return", "url": "https://example.org/notes/2", "date": "2026-02"}
            ],
        }
    ],
}
