"""Shared fixtures: small portfolios as files, and where the workshop's example lives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "portfolio.json"
# The workshop's calibrated parameters (as batchpipe calibrates them): given in a file, they skip calibration.
WORKSHOP_HESTON = {"v0": 0.012156, "kappa": 1.445046, "theta": 0.032599, "sigma": 0.353975, "rho": -0.598907}


def small_portfolio(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "small",
        "market": {"heston": WORKSHOP_HESTON},
        "simulation": {"paths": 2000, "seed": 7},
        "positions": [
            {"id": "a", "notional": 1e7, "strike": 3500, "barrier": 1.0},
            {"id": "b", "notional": 5e6, "strike": 3550, "barrier": 0.95},
            {"id": "c", "notional": 1e7, "strike": 3750, "autocallBarrier": 0.95, "maturityYears": 3},
            {"id": "d", "notional": 2e6, "strike": 3550, "barrier": 0.9, "memory": False, "coupon": 0.07},
            {"id": "e", "notional": 1e7, "strike": 3350, "barrier": 0.99,
             "observationDates": ["2020-05-20", "2021-05-20", "2022-05-20"]},
        ],
    }  # fmt: skip
    doc.update(overrides)
    return doc


@pytest.fixture
def write_json(tmp_path: Path) -> Any:
    def _write(doc: Any, name: str = "portfolio.json") -> Path:
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    return _write
