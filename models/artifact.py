"""The model artifact: plain JSON read with numpy only (no pickle, no scipy when scoring).

Artifacts live in a model directory as `model-<version>.json` with their model cards beside them;
`active.json` names the active version. Every version stays loadable so that an old assessment can
be explained with the model that scored it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from risk_rules.errors import ModelArtifactError
from risk_rules.unknowns import PopulationShares, neutral_shares

ARTIFACT_FORMAT = 3
# Format 1 (bootstrap refits) and 2 (bands fixed to one destination leg's no-factor odds, left-out fields
# read as absent) stay loadable so that old assessments can be re-explained as they were scored.
SUPPORTED_FORMATS = (1, 2, 3)
THIRD_COUNTRY_FEATURE = "third_country_leg"


@dataclass(frozen=True)
class BandThresholds:
    """Probability thresholds between bands: low < elevated <= ... < high <= ... < severe."""

    elevated: float
    high: float
    severe: float

    def band(self, probability: float) -> str:
        if probability >= self.severe:
            return "severe"
        if probability >= self.high:
            return "high"
        if probability >= self.elevated:
            return "elevated"
        return "low"

    def as_dict(self) -> dict[str, float]:
        return {"elevated": self.elevated, "high": self.high, "severe": self.severe}


def thresholds_over(baseline: float, multiples: dict[str, float]) -> BandThresholds:
    """Band thresholds for an itinerary whose no-factor probability is `baseline`: the probabilities at
    which the trip's odds are `multiples` times the no-factor odds of the same itinerary."""
    baseline = min(max(baseline, 1e-300), 1.0 - 1e-12)
    odds = baseline / (1.0 - baseline)
    return BandThresholds(
        *((m * odds) / (1.0 + m * odds) for m in (multiples["elevated"], multiples["high"], multiples["severe"]))
    )


@dataclass(frozen=True)
class ModelArtifact:
    """A fitted, prior-corrected logistic model as stored in JSON."""

    version: str
    features: tuple[str, ...]
    coefficients: np.ndarray  # (F,)
    intercept: float  # corrected to the per-trip base rate
    bootstrap_coefficients: np.ndarray  # (B, F): posterior draws (bootstrap refits in format 1)
    bootstrap_intercepts: np.ndarray  # (B,), corrected
    bands: BandThresholds  # for one destination leg (the only bands of formats 1 and 2)
    rules_version: str
    document: dict[str, Any]
    # Format 3 on: bands are multiples of the same itinerary's no-factor odds, for any number of legs.
    band_multiples: dict[str, float] | None = None
    # The reference population's shares a left-out field's expectation is taken under (format 3 on;
    # earlier models read a left-out field as absent, which `neutral_shares` reproduces).
    shares: PopulationShares = field(default_factory=neutral_shares)

    @property
    def third_country_index(self) -> int:
        return self.features.index(THIRD_COUNTRY_FEATURE)

    def bands_for(self, baseline: float) -> BandThresholds:
        """The band thresholds of an itinerary whose no-factor probability is `baseline`."""
        if self.band_multiples is None:
            return self.bands
        return thresholds_over(baseline, self.band_multiples)

    def coefficient(self, feature: str) -> float:
        return float(self.coefficients[self.features.index(feature)])


def artifact_from_document(document: dict[str, Any], origin: str = "model artifact") -> ModelArtifact:
    """Build a `ModelArtifact` from its JSON document, checking shapes."""
    try:
        if document.get("format") not in SUPPORTED_FORMATS:
            raise ModelArtifactError(f"{origin}: unsupported artifact format {document.get('format')!r}")
        features = tuple(document["features"])
        coefficients = np.asarray(document["coefficients"], dtype=float)
        # Draws of the coefficients: posterior draws (format 2 on), bootstrap refits in older artifacts.
        boot = document["posterior_draws"] if "posterior_draws" in document else document["bootstrap"]
        boot_coef = np.asarray(boot["coefficients"], dtype=float)
        boot_int = np.asarray(boot["intercepts"], dtype=float)
        bands = document["bands"]["thresholds"]
        relative = document["format"] >= 3
        shares = PopulationShares.from_document(document["population_shares"]) if relative else neutral_shares()
        artifact = ModelArtifact(
            version=document["version"],
            features=features,
            coefficients=coefficients,
            intercept=float(document["intercept"]),
            bootstrap_coefficients=boot_coef,
            bootstrap_intercepts=boot_int,
            bands=BandThresholds(float(bands["elevated"]), float(bands["high"]), float(bands["severe"])),
            rules_version=document["rules_version"],
            document=document,
            band_multiples=dict(document["bands"]["multiples_of_no_factor_odds"]) if relative else None,
            shares=shares,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelArtifactError(f"{origin}: malformed artifact ({exc})") from exc
    if coefficients.shape != (len(features),) or boot_coef.ndim != 2 or boot_coef.shape[1] != len(features):
        raise ModelArtifactError(f"{origin}: coefficient shapes do not match the feature list")
    if boot_int.shape != (boot_coef.shape[0],):
        raise ModelArtifactError(f"{origin}: bootstrap intercepts do not match the bootstrap coefficients")
    if THIRD_COUNTRY_FEATURE not in features:
        raise ModelArtifactError(f"{origin}: the feature list lacks '{THIRD_COUNTRY_FEATURE}'")
    return artifact


def bundled_model_dir() -> Path:
    return Path(str(resources.files("models") / "artifacts"))


def model_dir() -> Path:
    """Where models are written and read first: TRAVELRISK_MODEL_DIR, else the bundled directory."""
    configured = os.environ.get("TRAVELRISK_MODEL_DIR")
    return Path(configured) if configured else bundled_model_dir()


def _search_dirs(directory: Path | None) -> list[Path]:
    dirs = [directory] if directory else [model_dir()]
    if bundled_model_dir() not in dirs:
        dirs.append(bundled_model_dir())
    return dirs


def artifact_path(directory: Path, version: str) -> Path:
    return directory / f"model-{version}.json"


def load_artifact(version: str, directory: Path | None = None) -> ModelArtifact:
    """Load one model version from the model directory (falling back to the bundled models)."""
    for folder in _search_dirs(directory):
        path = artifact_path(folder, version)
        if path.is_file():
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ModelArtifactError(f"{path}: cannot read model artifact ({exc})") from exc
            return artifact_from_document(document, origin=str(path))
    raise ModelArtifactError(f"model version '{version}' not found in {', '.join(map(str, _search_dirs(directory)))}")


def active_version(directory: Path | None = None) -> str:
    """The version named by `active.json` in the first model directory that has one."""
    for folder in _search_dirs(directory):
        pointer = folder / "active.json"
        if pointer.is_file():
            try:
                return json.loads(pointer.read_text(encoding="utf-8"))["version"]
            except (OSError, json.JSONDecodeError, KeyError) as exc:
                raise ModelArtifactError(f"{pointer}: unreadable active-model pointer ({exc})") from exc
    raise ModelArtifactError("no active model: run `travelrisk model train --activate`")


def activate(version: str, directory: Path) -> None:
    """Make `version` (already written in `directory`) the active model there."""
    if not artifact_path(directory, version).is_file():
        raise ModelArtifactError(f"cannot activate '{version}': no artifact in {directory}")
    pointer = directory / "active.json"
    tmp = pointer.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"version": version}) + "\n", encoding="utf-8")
    os.replace(tmp, pointer)  # atomic: a reader sees the old or the new pointer, never half of one


def list_versions(directory: Path | None = None) -> list[str]:
    """Every model version in the model directory and the bundled one: artifacts, not their cards."""
    seen: dict[str, None] = {}
    for folder in _search_dirs(directory):
        for path in sorted(folder.glob("model-*.json")):
            version = path.stem.removeprefix("model-")
            # `model-<version>.card.json` sits beside each artifact; a version never contains a dot.
            if "." not in version:
                seen.setdefault(version, None)
    return list(seen)
