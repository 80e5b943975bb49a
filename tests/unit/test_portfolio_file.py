"""The portfolio file is split without building its positions: the result must be what json.loads would read."""

from __future__ import annotations

import json

import pytest

from batchpipe.errors import InputError
from batchpipe.pipelines.portfolio import Position, parse_portfolio
from tests.conftest import EXAMPLE


def positions_of(text: str) -> list[Position]:
    return list(parse_portfolio(text, "p.json").positions())


def test_the_workshop_file_reads_as_json_loads_reads_it() -> None:
    text = EXAMPLE.read_text()
    portfolio = parse_portfolio(text, "portfolio.json")
    expected = [Position.model_validate_json(json.dumps(p)) for p in json.loads(text)["positions"]]
    assert len(portfolio) == 48 and list(portfolio.positions()) == expected
    assert portfolio.name == "autocallable"


@pytest.mark.parametrize(
    "text",
    [
        # positions before, between and after the other blocks; odd whitespace; nested "positions" keys elsewhere
        '{"positions":[{"notional":1,"strike":2,"barrier":1}],"name":"n","simulation":{"seed":3}}',
        ' \n\t{ "name" : "n" ,\r\n "positions" : [ {"notional":1, "strike":2, "barrier":1} ] , '
        '"simulation" : {"seed" : 3} } \n',
        '{"name":"n","market":{"heston":{"v0":0.04,"kappa":1,"theta":0.04,"sigma":0.3,"rho":-0.5}},'
        '"positions":[{"notional":1,"strike":2,"barrier":1,"id":"[\\"positions\\"]"}],"simulation":{"seed":3}}',
    ],
)
def test_members_in_any_order_and_spacing(text: str) -> None:
    portfolio = parse_portfolio(text, "p.json")
    assert portfolio.name == "n" and portfolio.simulation.seed == 3
    [position] = portfolio.positions()
    assert (position.notional, position.strike, position.autocall_barrier) == (1, 2, 1)


def test_a_repeated_member_counts_once_the_last_as_in_json_loads() -> None:
    text = '{"positions":[{"notional":1,"strike":1,"barrier":1}],"positions":[{"notional":7,"strike":2,"barrier":1}]}'
    assert [p.notional for p in positions_of(text)] == [7]
    text = '{"positions":[{"notional":1,"strike":1,"barrier":1}],"positions":"none"}'
    with pytest.raises(InputError, match="positions: must be a list of positions"):
        parse_portfolio(text, "p.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"positions": [{"notional": 1, "strike": 1, "barrier": 1},]}', "Expecting value at line 1 column 59"),
        ('{"positions": [{"notional": 1, "strike": 1, "barrier": 1}]} x', "not valid JSON: Extra data"),
        ('{"positions": [{"notional": 1, "strike": 1, "barrier": 1}]', "not valid JSON"),
        ('"positions"', "must be a JSON object"),
        ("{}", "positions: missing required field"),
        ('{"positions": {"a": 1}}', "positions: must be a list of positions"),
        ('{"positions": [1]}', "position 0: Input should be an object"),
        (
            '{"name": 5, "positions": [{"notional": -1, "strike": 1, "barrier": 1}]}',
            "name: Input should be a valid string (and 1 more error)",
        ),
        (
            '{"positions": [{"notional": 1, "strike": 1, "barrier": 1}, {"notional": 1, "strike": 0, "barrier": 1},'
            ' {"strike": 1, "barrier": 1}]}',
            "position 1, field strike: Input should be greater than 0 (and 1 more error)",
        ),
    ],
)
def test_bad_files_name_the_first_problem(text: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_portfolio(text, "p.json")
    assert str(info.value).startswith("p.json: ") and message in str(info.value)
