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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # json.loads keeps the last of repeated keys: a financial input that says two things is an error
        ('{"positions":[{"notional":1,"strike":1,"barrier":1}],"positions":[{"notional":7,"strike":2,"barrier":1}]}',
         "p.json: positions: repeated key"),
        ('{"positions":[{"notional":1,"strike":1,"barrier":1}],"positions":"none"}', "p.json: positions: repeated key"),
        ('{"name":"a","name":"b","positions":[{"notional":1,"strike":1,"barrier":1}]}', "p.json: name: repeated key"),
        ('{"market":{"spot":1,"spot":2},"positions":[{"notional":1,"strike":1,"barrier":1}]}',
         "p.json: spot: repeated key"),
        ('{"positions":[{"notional":1,"strike":1,"barrier":1},{"notional":1e7,"notional":2e7,"strike":1,"barrier":1}]}',
         "p.json: position 1, field notional: repeated key"),
        # aliases of one field are one field given twice too
        ('{"positions":[{"notional":1,"strike":1,"barrier":1,"autocallBarrier":1}]}',
         "position 0, field autocallBarrier"),
    ],
)  # fmt: skip
def test_a_repeated_key_is_an_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_portfolio(text, "p.json")


def test_a_colon_inside_a_string_is_not_a_repeated_key() -> None:
    text = '{"positions":[{"id":"desk:a:1","notional":1,"strike":1,"barrier":1}]}'
    assert [p.id for p in positions_of(text)] == ["desk:a:1"]


def test_duplicate_position_ids_are_an_error_naming_both_positions() -> None:
    text = ('{"positions":[{"id":"a","notional":1,"strike":1,"barrier":1},{"id":"b","notional":1,"strike":1,'
            '"barrier":1},{"id":"a","notional":2,"strike":1,"barrier":1}]}')  # fmt: skip
    with pytest.raises(InputError, match=r"p.json: position 2: id 'a' is already the id of position 0"):
        parse_portfolio(text, "p.json")
    # positions without ids are fine, however many
    text = '{"positions":[{"notional":1,"strike":1,"barrier":1},{"notional":1,"strike":1,"barrier":1}]}'
    assert len(list(positions_of(text))) == 2


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
