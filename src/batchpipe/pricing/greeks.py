"""The bumps behind the Greeks and the scenario ladders, and their finite differences (the README's contract).

With PV0 the price in today's market and h, b, dr the spot, vol and rate bumps (defaults 1%, one vol point, one
basis point):

- delta = (PV(S0 (1 + h)) - PV(S0 (1 - h))) / (2 h S0), per unit of spot;
- gamma = (PV(S0 (1 + h)) - 2 PV0 + PV(S0 (1 - h))) / (h S0)^2, per unit of spot squared;
- vega = (PV(+b) - PV(-b)) / 2 x (0.01 / b), per vol point, where +b moves sqrt(v0) and sqrt(theta) by b;
- rho = (PV(r + dr) - PV(r - dr)) / 2 x (0.0001 / dr), per basis point, r moving in the drift and the discounting.

Every bumped price is taken on the same random numbers as PV0 (common random numbers). Heston's log-price step is
additive in log S0 and its drift is (r - q) dt, so a spot bump scales every path by (1 + h) and a rate bump
multiplies S_t by exp(dr t) (and the discount factors by exp(-dr t)): neither needs a new simulation. A vol bump
changes the variance process: it is simulated again from the same normals (the QE scheme draws one normal per
step for the variance and one for the price whatever the parameters).
"""

from __future__ import annotations

import math
from dataclasses import replace

from batchpipe.pricing import domain
from batchpipe.pricing.heston import HestonParams

GREEKS = ("delta", "gamma", "vega", "rho")
VOL_POINT = 0.01
BASIS_POINT = 1e-4
DEFAULT_SPOT_BUMP = 0.01
DEFAULT_VOL_BUMP = VOL_POINT
DEFAULT_RATE_BUMP = BASIS_POINT


def vol_shifted(p: HestonParams, shift: float) -> HestonParams:
    """The model with sqrt(v0) and sqrt(theta) moved by `shift` (0.01 is one vol point); itself for 0."""
    if shift == 0:
        return p
    return replace(p, v0=(math.sqrt(p.v0) + shift) ** 2, theta=(math.sqrt(p.theta) + shift) ** 2)


def vol_shift_problem(p: HestonParams, shift: float) -> str | None:
    """Why the model cannot be moved by `shift` (a square root would turn negative, or the moved model leaves the
    accepted domain), or None."""
    for name, value in (("v0", p.v0), ("theta", p.theta)):
        root = math.sqrt(value) + shift
        if root < 0:
            return f"sqrt({name}) = {math.sqrt(value):.6g} moved by {shift:+.6g} is negative"
        moved = root * root
        if not domain.HESTON[name].contains(moved):
            return f"{name} moved to {moved:.6g} is outside the accepted range {domain.HESTON[name].text()}"
    return None


def rate_shift_problem(rate: float, shift: float) -> str | None:
    """Why the rate cannot be moved by +/- `shift`, or None."""
    for moved in (rate - shift, rate + shift):
        if not domain.RATE.contains(moved):
            return f"the rate moved to {moved:.6g} is outside the accepted range {domain.RATE.text()}"
    return None
