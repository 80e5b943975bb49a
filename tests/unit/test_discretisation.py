"""Time-step convergence of the Monte Carlo pipeline on workshop-like autocallables.

Claim tested: doubling stepsPerYear from the default (batchpipe.pipelines.portfolio.Simulation, 12) moves
every position's PV by less than one standard error (the larger of the two runs' pipeline standard errors) at
100,000 paths, with the workshop-calibrated Heston parameters given in market.heston.

Why the two runs share Brownian paths: the pipeline's own normals for a 91-step and a 175-step grid are
unrelated draws (a block's stream is consumed in (steps, 2, pairs) order), so with its own random numbers the
two PVs are independent estimates, their difference has a standard deviation of ~1.4 standard errors, and
"|difference| < 1 standard error" would fail about half the time with no discretisation error at all. So both
runs here draw, per block (seeded by SeedSequence(seed, spawn_key=(block,)) as the library does), the same two
Brownian motions on the union of the two time grids, and each run's normals are that motion's increments over
its own steps divided by sqrt(step): still independent standard normals within a run, but the runs now differ
only by the discretisation. The patch replaces the pipeline's path generator (simulate_qe_blocks, which draws
the normals) in batchpipe.pipelines.montecarlo.price and the test checks that it was used, and that the coupling
works (the difference's own standard error, from the 64 batch means, is well below the PVs').
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from batchpipe.pipelines.montecarlo import price, price_shard
from batchpipe.pipelines.portfolio import Simulation, parse_portfolio
from batchpipe.pricing.heston import HestonParams
from batchpipe.pricing.paths import TimeGrid, build_grid, simulate_qe_antithetic
from tests.montecarlo_memory import collate, preprocess, shard_slice

DEFAULT_STEPS = Simulation().steps_per_year
WORKSHOP_HESTON = {"v0": 0.01216, "kappa": 1.445, "theta": 0.0326, "sigma": 0.354, "rho": -0.599}
PATHS, SEED = 100_000, 2019
# workshop-like positions: default product (7 annual dates, 5% memory coupon, coupon barrier 80%, protection
# 60%)
POSITIONS = [
    {"notional": 1e6, "strike": 3350.0, "barrier": 0.95},
    {"notional": 1e6, "strike": 3550.0, "barrier": 1.0},
    {"notional": 1e6, "strike": 3750.0, "barrier": 0.975},
    {"notional": 1e6, "strike": 3550.0, "barrier": 0.95},
    {"notional": 1e6, "strike": 3750.0, "barrier": 1.0},
]


def portfolio_text(steps_per_year: int) -> str:
    return json.dumps(
        {
            "name": "discretisation",
            "market": {"heston": WORKSHOP_HESTON},
            "simulation": {"paths": PATHS, "seed": SEED, "stepsPerYear": steps_per_year},
            "positions": POSITIONS,
        }
    )


class CoupledNormals:
    """Normals for any of several grids on the same observation times, from Brownian motions on their
    union."""

    def __init__(self, grids: list[TimeGrid]) -> None:
        self.union = np.unique(np.concatenate([g.times for g in grids]))
        self.grids: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for g in grids:
            idx = np.searchsorted(self.union, g.times)
            np.testing.assert_array_equal(self.union[idx], g.times)
            assert g.steps not in self.grids, "the grids must have different step counts"
            self.grids[g.steps] = (idx, np.sqrt(np.diff(g.times)))
        self.calls = 0

    def block(self, seed: int, block: int, steps: int, half: int) -> np.ndarray:
        """Shape (steps, 2, half), like paths.block_normals."""
        self.calls += 1
        idx, sqrt_dt = self.grids[steps]
        rng = np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(block,))))
        increments = rng.standard_normal((self.union.size - 1, 2, half))
        increments *= np.sqrt(np.diff(self.union))[:, None, None]
        w = np.concatenate([np.zeros((1, 2, half)), np.cumsum(increments, axis=0)])
        return np.asarray((w[idx[1:]] - w[idx[:-1]]) / sqrt_dt[:, None, None])

    def chunk(self, seed: int, blocks: range, steps: int, half: int) -> np.ndarray:
        """Shape (blocks, steps, 2, half), like paths.chunk_normals."""
        return np.stack([self.block(seed, b, steps, half) for b in blocks])

    def simulate_blocks(
        self,
        p: HestonParams,
        spot: float,
        rate: float,
        dividend: float,
        grid: TimeGrid,
        seed: int,
        blocks: range,
        half: int,
    ) -> np.ndarray:
        """Like paths.simulate_qe_blocks, on these normals."""
        return self.simulate_blocks_many([p], spot, rate, dividend, grid, seed, blocks, half)[0]

    def simulate_blocks_many(
        self,
        params: list[HestonParams],
        spot: float,
        rate: float,
        dividend: float,
        grid: TimeGrid,
        seed: int,
        blocks: range,
        half: int,
    ) -> list[np.ndarray]:
        """Like paths.simulate_qe_blocks_many, on these normals."""
        normals = self.chunk(seed, blocks, grid.steps, half)
        return [simulate_qe_antithetic(p, spot, rate, dividend, grid, normals) for p in params]


def run(steps_per_year: int) -> tuple[dict[str, Any], list[list[float]]]:
    # one position per shard: each shard's block totals are its position's block means
    text = portfolio_text(steps_per_year)
    plan, positions = preprocess(parse_portfolio(text, "discretisation.json"), "disc", positions_per_job=1)
    shards = [price_shard(plan, s, shard_slice(plan, positions, s)) for s in range(plan.shards)]
    totals = [[math.fsum(parts) for parts in s.block_totals or []] for s in shards]
    return collate(plan, positions, shards).stored(), totals


def test_doubling_steps_per_year_moves_pvs_by_less_than_one_standard_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """|PV(2 x default steps) - PV(default steps)| < max(stderr_1x, stderr_2x) for every position.

    Observed when written (seed 2019): |difference| / stderr <= 0.5; the difference's own standard error is
    about a third of the PVs' standard error (coupling imperfect because the payoffs are digital-like).
    """
    plan, _ = preprocess(parse_portfolio(portfolio_text(DEFAULT_STEPS), "discretisation.json"), "disc")
    obs = np.array(plan.observation_times)
    kappa = WORKSHOP_HESTON["kappa"]
    coupled = CoupledNormals([build_grid(obs, s, kappa=kappa) for s in (DEFAULT_STEPS, 2 * DEFAULT_STEPS)])
    generators = {"block_normals": coupled.block, "chunk_normals": coupled.chunk,
                  "simulate_qe_blocks": coupled.simulate_blocks,
                  "simulate_qe_blocks_many": coupled.simulate_blocks_many}  # fmt: skip
    patched = [name for name in generators if hasattr(price, name)]
    assert patched, "the pipeline's normal generator moved: update CoupledNormals"
    for name in patched:
        monkeypatch.setattr(price, name, generators[name])

    coarse, coarse_shards = run(DEFAULT_STEPS)
    fine, fine_shards = run(2 * DEFAULT_STEPS)
    assert coupled.calls > 0, "the patched generator was not used: the runs are not coupled"
    assert coarse["simulation"]["stepsPerYear"] == DEFAULT_STEPS
    assert fine["simulation"]["stepsPerYear"] == 2 * DEFAULT_STEPS
    assert coarse["status"] == fine["status"] == "SUCCEEDED"

    report = []
    for a, b, sa, sb in zip(coarse["positions"], fine["positions"], coarse_shards, fine_shards, strict=True):
        stderr = max(a["stderr"], b["stderr"])
        diff = b["pv"] - a["pv"]
        block_diff = np.array(sb) - np.array(sa)
        diff_stderr = float(np.std(block_diff, ddof=1) / math.sqrt(block_diff.size))
        report.append((a["strike"], a["autocallBarrier"], diff, stderr, diff_stderr))
        assert stderr > 0
    lines = "\n".join(
        f"K={k} barrier={bar}: PV_2x - PV_1x = {d:.1f}, stderr {s:.1f}, ratio {d / s:.2f}, "
        f"stderr of the difference {ds:.1f}"
        for k, bar, d, s, ds in report
    )
    # the coupling is what gives the comparison its meaning
    assert all(ds < 0.6 * s for *_, s, ds in report), lines
    assert all(abs(d) < s for _, _, d, s, _ in report), lines
