"""The portfolio file: a typed, validated contract with the workshop's values as defaults.

The workshop's own `portfolio.json` ({"name", "positions": [{"notional", "strike", "barrier"}]}) is valid as is;
every other block is optional. Validation errors become one line naming the file, the position and the field.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from batchpipe.errors import InputError
from batchpipe.pricing import domain

WORKSHOP_EXPIRIES = [
    "2020-06-19", "2020-12-18", "2021-06-18", "2021-12-17", "2022-06-17",
    "2022-12-16", "2023-12-15", "2024-12-20", "2025-12-19", "2026-12-18",
]  # fmt: skip
WORKSHOP_STRIKES = [3075.0, 3200.0, 3350.0, 3550.0, 3775.0, 3950.0, 4050.0]
WORKSHOP_VOLS = [
    [0.1753, 0.1631, 0.1493, 0.132, 0.116, 0.108, 0.1052],
    [0.1683, 0.1583, 0.147, 0.1334, 0.1212, 0.1145, 0.1117],
    [0.1673, 0.1597, 0.1517, 0.1428, 0.1346, 0.129, 0.1262],
    [0.1659, 0.1601, 0.1541, 0.1474, 0.1417, 0.1381, 0.1363],
    [0.1678, 0.1634, 0.1588, 0.1537, 0.1493, 0.1467, 0.1455],
    [0.1678, 0.1644, 0.1609, 0.1572, 0.1541, 0.1522, 0.1513],
    [0.1694, 0.1666, 0.1638, 0.1608, 0.1584, 0.1569, 0.1562],
    [0.1701, 0.168, 0.166, 0.164, 0.1623, 0.1614, 0.161],
    [0.1715, 0.1698, 0.1682, 0.1667, 0.1654, 0.1648, 0.1645],
    [0.1724, 0.171, 0.1697, 0.1684, 0.1675, 0.1671, 0.1669],
]

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


def _bounded(bound: domain.Bound) -> Any:
    def check(value: float) -> float:
        if not bound.contains(value):
            raise ValueError(f"{value!r} is outside the accepted range {bound.text()} (see the README's model domain)")
        return value

    return check


class Heston(_Model):
    """Heston's parameters, within the domain the engine prices accurately (`batchpipe.pricing.domain`)."""

    v0: Annotated[float, Field(allow_inf_nan=False), AfterValidator(_bounded(domain.HESTON["v0"]))]
    kappa: Annotated[float, Field(allow_inf_nan=False), AfterValidator(_bounded(domain.HESTON["kappa"]))]
    theta: Annotated[float, Field(allow_inf_nan=False), AfterValidator(_bounded(domain.HESTON["theta"]))]
    sigma: Annotated[float, Field(allow_inf_nan=False), AfterValidator(_bounded(domain.HESTON["sigma"]))]
    rho: Annotated[float, Field(allow_inf_nan=False), AfterValidator(_bounded(domain.HESTON["rho"]))]


class VolSurface(_Model):
    expiries: list[date] = Field(min_length=1)
    strikes: list[Positive] = Field(min_length=1)
    vols: list[list[Positive]]

    @model_validator(mode="after")
    def _shape(self) -> VolSurface:
        if len(self.vols) != len(self.expiries) or any(len(row) != len(self.strikes) for row in self.vols):
            raise ValueError(
                f"vols must have {len(self.expiries)} rows (one per expiry) of {len(self.strikes)} (one per strike)"
            )
        if sorted(set(self.expiries)) != self.expiries:
            raise ValueError("expiries must be strictly increasing")
        return self


class Market(_Model):
    spot: Positive = 3550.0
    rate: Annotated[float, Field(allow_inf_nan=False), AfterValidator(_bounded(domain.RATE))] = 0.01
    dividend_yield: Annotated[float, Field(allow_inf_nan=False), AfterValidator(_bounded(domain.DIVIDEND_YIELD))] = (
        Field(0.0, alias="dividendYield")
    )
    day_count: Literal["ACT/360", "ACT/365F"] = Field("ACT/360", alias="dayCount")
    vol_surface: VolSurface = Field(
        default_factory=lambda: VolSurface(
            expiries=[date.fromisoformat(d) for d in WORKSHOP_EXPIRIES],
            strikes=WORKSHOP_STRIKES,
            vols=WORKSHOP_VOLS,
        ),
        alias="volSurface",
    )
    heston: Heston | None = None


class Product(_Model):
    coupon: NonNegative = 0.05
    coupon_barrier: NonNegative = Field(0.8, alias="couponBarrier")
    protection_barrier: NonNegative = Field(0.6, alias="protectionBarrier")
    memory: bool = True
    maturity_years: Annotated[int, Field(ge=1, le=100)] = Field(7, alias="maturityYears")


class Simulation(_Model):
    paths: Annotated[int, Field(ge=domain.MIN_PATHS, le=domain.MAX_PATHS)] = 100_000
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 2019
    steps_per_year: Annotated[int, Field(ge=1, le=3650)] = Field(12, alias="stepsPerYear")


class Position(_Model):
    id: str | None = None
    notional: Positive
    strike: Positive
    autocall_barrier: NonNegative = Field(validation_alias=AliasChoices("barrier", "autocallBarrier"))
    coupon: NonNegative | None = None
    coupon_barrier: NonNegative | None = Field(None, alias="couponBarrier")
    protection_barrier: NonNegative | None = Field(None, alias="protectionBarrier")
    memory: bool | None = None
    maturity_years: Annotated[int, Field(ge=1, le=100)] | None = Field(None, alias="maturityYears")
    observation_dates: list[date] | None = Field(None, alias="observationDates", min_length=1)

    @field_validator("observation_dates")
    @classmethod
    def _increasing(cls, v: list[date] | None) -> list[date] | None:
        if v is not None and sorted(set(v)) != v:
            raise ValueError("observation dates must be strictly increasing")
        return v


MAX_SCENARIOS = 1_000  # spot shifts times vol shifts: each is a PV of every position per block in a shard result


class GreeksSection(_Model):
    """The "greeks" block: price delta, gamma, vega and rho with these bumps (`batchpipe.pricing.greeks`)."""

    spot_bump: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(0.01, alias="spotBump")
    vol_bump: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(0.01, alias="volBump")
    rate_bump: Annotated[float, Field(gt=0, le=0.1, allow_inf_nan=False)] = Field(0.0001, alias="rateBump")


def _number(text: str, percent: bool) -> Decimal:
    """One number of a ladder; with `percent`, "5%" is 0.05 (a bare number is a fraction)."""
    t = text.strip()
    scale = Decimal(1)
    if t.endswith("%"):
        if not percent:
            raise ValueError(f"{text.strip()!r}: vol shifts are in vol points, without %")
        t, scale = t[:-1].strip(), Decimal("0.01")
    try:
        value = Decimal(t)
    except InvalidOperation:
        raise ValueError(f"{text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text.strip()!r} is not a finite number")
    return value * scale


def parse_ladder(text: str, percent: bool) -> list[float]:
    """A ladder "START:STOP:STEP" (both ends included) or one value: spot shifts with `percent` ("-30%:30%:5%",
    or fractions "-0.3:0.3:0.05"), vol shifts in vol points ("-5:5:1")."""
    parts = text.split(":")
    if len(parts) == 1:
        return [float(_number(parts[0], percent))]
    if len(parts) != 3:
        raise ValueError(f"{text!r}: use START:STOP:STEP or one value")
    start, stop, step = (_number(x, percent) for x in parts)
    if step <= 0:
        raise ValueError(f"{text!r}: the step must be positive")
    if stop < start:
        raise ValueError(f"{text!r}: STOP is below START")
    count = (stop - start) / step
    if count != count.to_integral_value():
        raise ValueError(f"{text!r}: STOP - START is not a whole number of steps")
    if count >= MAX_SCENARIOS:
        raise ValueError(f"{text!r}: more than {MAX_SCENARIOS:,} shifts")
    return [float(start + i * step) for i in range(int(count) + 1)]


def _ladder(percent: bool) -> Any:
    def check(value: object) -> object:
        if isinstance(value, str):
            return parse_ladder(value, percent)
        return value

    return check


def _increasing(values: list[float]) -> list[float]:
    if not values:
        raise ValueError("give at least one shift")
    if sorted(set(values)) != values:
        raise ValueError("shifts must be strictly increasing")
    return values


class ScenariosSection(_Model):
    """The "scenarios" block: every spot shift (fractions of the spot, or "-30%:30%:5%") with every vol shift (vol
    points, added to sqrt(v0) and sqrt(theta) as hundredths, or "-5:5:1"); an axis left out is the unshifted market."""

    spot: Annotated[
        list[Annotated[float, Field(gt=-1, allow_inf_nan=False)]],
        BeforeValidator(_ladder(percent=True)),
        AfterValidator(_increasing),
    ] = Field(default_factory=lambda: [0.0])
    vol: Annotated[
        list[Annotated[float, Field(allow_inf_nan=False)]],
        BeforeValidator(_ladder(percent=False)),
        AfterValidator(_increasing),
    ] = Field(default_factory=lambda: [0.0])

    @model_validator(mode="after")
    def _size(self) -> ScenariosSection:
        if len(self.spot) * len(self.vol) > MAX_SCENARIOS:
            raise ValueError(
                f"scenarios: {len(self.spot)} spot shifts x {len(self.vol)} vol shifts is more than "
                f"{MAX_SCENARIOS:,} scenarios"
            )
        return self


def parse_scenarios_option(text: str) -> ScenariosSection:
    """--scenarios "spot=-30%:30%:5%,vol=-5:5:1" (either part may be left out); ValueError saying what is wrong."""
    given: dict[str, list[float]] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in ("spot", "vol"):
            raise ValueError(f"{item.strip()!r}: use spot=START:STOP:STEP and/or vol=START:STOP:STEP")
        if key in given:
            raise ValueError(f"{key} is given twice")
        given[key] = parse_ladder(value, percent=key == "spot")
    try:
        return ScenariosSection.model_validate(given)
    except ValidationError as exc:
        raise ValueError(_describe(dict(exc.errors(include_url=False)[0]))) from None


class Settings(_Model):
    """Every top-level block of a portfolio file except its positions."""

    name: str = "autocallable"
    valuation_date: date = Field(date(2019, 11, 20), alias="valuationDate")
    market: Market = Field(default_factory=lambda: Market.model_validate({}))
    product: Product = Field(default_factory=lambda: Product.model_validate({}))
    simulation: Simulation = Field(default_factory=lambda: Simulation.model_validate({}))
    greeks: GreeksSection | None = None  # present: every position's greeks are priced
    scenarios: ScenariosSection | None = None

    @model_validator(mode="after")
    def _expiries_after_valuation(self) -> Settings:
        for i, expiry in enumerate(self.market.vol_surface.expiries):
            if expiry <= self.valuation_date:
                raise ValueError(
                    f"market.volSurface.expiries[{i}]: {expiry.isoformat()} is not after the valuation date "
                    f"{self.valuation_date.isoformat()}"
                )
        return self


@dataclass(frozen=True)
class Portfolio:
    """A validated portfolio: its settings, and its positions read one at a time from the file's text.

    Positions are not held as objects: a 100,000-position file costs its text and two integers per position, and
    preprocessing streams them (each was validated when the file was parsed).
    """

    settings: Settings
    source: str
    text: str
    spans: array[int]  # start and end offsets of every position's JSON in text, flattened

    def __len__(self) -> int:
        return len(self.spans) // 2

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def valuation_date(self) -> date:
        return self.settings.valuation_date

    @property
    def market(self) -> Market:
        return self.settings.market

    @property
    def product(self) -> Product:
        return self.settings.product

    @property
    def simulation(self) -> Simulation:
        return self.settings.simulation

    def positions(self) -> Iterator[Position]:
        spans = self.spans
        for i in range(0, len(spans), 2):
            yield Position.model_validate_json(self.text[spans[i] : spans[i + 1]])


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _describe(err: dict[str, Any], position: int | None = None) -> str:
    loc = tuple(p for p in err["loc"] if p not in ("function-after", "constrained-float"))
    where = _location(loc)
    if position is not None:
        where = f"position {position}" + (f", field {where}" if loc else "")
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "missing required field"
    msg = msg.removeprefix("Value error, ")
    return msg if not loc and position is None else f"{where}: {msg}"  # a whole-file check names its own fields


_WS = re.compile(r"[ \t\n\r]*")


class _NotSimple(Exception):
    """The text is not one JSON object: json.loads says what is wrong with it."""


class _Repeated(Exception):
    """A JSON object names the same key twice (json.loads would keep the last silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Repeated(key)
            seen.add(key)
    return out


def _repeated_key(text: str) -> str | None:
    """The first key some object of this JSON text names twice, or None."""
    try:
        json.loads(text, object_pairs_hook=_no_repeats)
    except _Repeated as exc:
        return exc.key
    except ValueError:
        return None  # not JSON: the validator says so
    return None


def _scan(text: str) -> tuple[dict[str, str], array[int] | None]:
    """Split a JSON object's text into its members' raw JSON, except "positions", an array whose elements' spans
    are returned instead (None when "positions" is absent or not an array: then its raw text is a member)."""
    decode = json.JSONDecoder().raw_decode

    def skip(i: int) -> int:
        """The index of the first non-whitespace character from i."""
        match = _WS.match(text, i)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    def value_end(i: int) -> int:
        try:
            return int(decode(text, i)[1])
        except json.JSONDecodeError:
            raise _NotSimple from None

    members: dict[str, str] = {}
    spans: array[int] | None = None
    i = skip(0)
    if text[i : i + 1] != "{":
        raise _NotSimple
    i = skip(i + 1)
    if text[i : i + 1] == "}":
        i += 1
    else:
        while True:
            if text[i : i + 1] != '"':
                raise _NotSimple
            end = value_end(i)
            key = json.loads(text[i:end])
            i = skip(end)
            if text[i : i + 1] != ":":
                raise _NotSimple
            i = skip(i + 1)
            if key in members or (key == "positions" and spans is not None):
                raise _Repeated(key)
            if key == "positions" and text[i : i + 1] == "[":
                spans = array("q")
                i = skip(i + 1)
                if text[i : i + 1] == "]":
                    i += 1
                else:
                    while True:
                        end = value_end(i)
                        spans.extend((i, end))
                        i = skip(end)
                        if text[i : i + 1] == "]":
                            i += 1
                            break
                        if text[i : i + 1] != ",":
                            raise _NotSimple
                        i = skip(i + 1)
            else:
                end = value_end(i)
                members[key] = text[i:end]
                if key == "positions":
                    spans = None
                i = end
            i = skip(i)
            if text[i : i + 1] == "}":
                i += 1
                break
            if text[i : i + 1] != ",":
                raise _NotSimple
            i = skip(i + 1)
    if skip(i) != len(text):
        raise _NotSimple
    return members, spans


def _first_error(source: str, errors: list[str], count: int) -> InputError:
    more = f" (and {count - 1} more error{'s' if count > 2 else ''})" if count > 1 else ""
    return InputError(f"{source}: {errors[0]}{more}")


def parse_portfolio(text: str, source: str) -> Portfolio:
    """Validate the JSON text of a portfolio; `source` names it in errors.

    The top-level object is split without building the positions, and each position is validated from its own
    text, so memory stays near the size of the file however many positions it holds.
    """
    try:
        members, spans = _scan(text)
    except _NotSimple:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        raise InputError(f"{source}: a portfolio must be a JSON object with a 'positions' list") from None
    except _Repeated as exc:
        raise InputError(f"{source}: {exc.key}: repeated key (each field may appear once)") from None
    errors: list[str] = []
    count = 0
    settings = None
    header = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in members.items() if k != "positions") + "}"
    repeated = _repeated_key(header)
    if repeated is not None:
        raise InputError(f"{source}: {repeated}: repeated key (each field may appear once)")
    try:
        settings = Settings.model_validate_json(header)
    except ValidationError as exc:
        found = exc.errors(include_url=False)
        errors.extend(_describe(dict(e)) for e in found[:1])
        count += len(found)
    if spans is None:
        what = "missing required field" if "positions" not in members else "must be a list of positions"
        errors.append(f"positions: {what}")
        count += 1
    elif not spans:
        errors.append("positions: the portfolio has no positions")
        count += 1
    else:
        ids: dict[str, int] = {}
        for i in range(0, len(spans), 2):
            index, raw = i // 2, text[spans[i] : spans[i + 1]]
            problem = None
            try:
                position = Position.model_validate_json(raw)
            except ValidationError as exc:
                found = exc.errors(include_url=False)
                if not errors:
                    errors.append(_describe(dict(found[0]), position=index))
                count += len(found)
                continue
            # a colon per key when no key repeats (a cheap test; the exact one only when it cannot tell)
            if raw.count(":") != len(position.model_fields_set) and (key := _repeated_key(raw)) is not None:
                problem = f"position {index}, field {key}: repeated key (each field may appear once)"
            elif position.id is not None and position.id in ids:
                problem = f"position {index}: id {position.id!r} is already the id of position {ids[position.id]}"
            elif settings is not None and position.observation_dates is not None:
                first = position.observation_dates[0]
                if first <= settings.valuation_date:
                    problem = (f"position {index}, field observationDates[0]: {first.isoformat()} is not after the "
                               f"valuation date {settings.valuation_date.isoformat()}")  # fmt: skip
            if position.id is not None:
                ids.setdefault(position.id, index)
            if problem is not None:
                if not errors:
                    errors.append(problem)
                count += 1
    if errors or settings is None or spans is None:
        raise _first_error(source, errors, count)
    return Portfolio(settings, source, text, spans)


def load_portfolio(path: str | Path) -> Portfolio:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, not a portfolio file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read: {exc}") from None
    return parse_portfolio(text, str(p))


def with_simulation_overrides(
    path: Path,
    paths: int | None,
    seed: int | None,
    greeks: GreeksSection | None = None,
    scenarios: ScenariosSection | None = None,
) -> bytes | None:
    """The portfolio file's bytes with --paths / --seed written into its simulation block, and the run's greeks and
    scenarios (the file's, with the command line's options over them) as its "greeks" and "scenarios" blocks
    (None: no override)."""
    if paths is None and seed is None and greeks is None and scenarios is None:
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    simulation = dict(raw.get("simulation") or {})
    if paths is not None:
        simulation["paths"] = paths
    if seed is not None:
        simulation["seed"] = seed
    if simulation or "simulation" in raw:
        raw["simulation"] = simulation
    if greeks is not None:
        raw["greeks"] = greeks.model_dump(by_alias=True)
    if scenarios is not None:
        raw["scenarios"] = scenarios.model_dump(by_alias=True)
    text = json.dumps(raw, indent=2)
    parse_portfolio(text, str(path))  # still valid
    return text.encode()
