"""Usage reports: grouping, time range, bad group_by, CLI output shapes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import InvalidRequest
from appliance.limits import cli
from appliance.limits.ledger import UsageLedger
from appliance.limits.report import format_csv, format_table, parse_time, usage_report
from appliance.state import StateDB
from tests.appliance.limits.test_ledger import row

DAY1, DAY2 = 1743465540.0, 1743465540.0 + 120  # 2025-03-31 and 2025-04-01 UTC


def fill(data_dir: Path) -> None:
    data_dir.mkdir(exist_ok=True)
    StateDB(data_dir / "state.db").close()
    ledger = UsageLedger(data_dir / "state.db")
    ledger.start()
    ledger.record(row(0, DAY1, department_id="dep_a", model_served="gpt-4o", cost_micros=100))
    ledger.record(row(1, DAY1, department_id="dep_a", model_served="gpt-4o", cost_micros=50,
                      cache_hit=True))
    ledger.record(row(2, DAY2, department_id="dep_a", model_served="gemma", cost_micros=0))
    ledger.record(row(3, DAY2, department_id="dep_b", model_served=None,
                      model_requested="gpt-4o", cost_micros=10))
    ledger.close()


def test_grouping_and_time_range(tmp_path: Path) -> None:
    fill(tmp_path)
    db = StateDB(tmp_path / "state.db")
    rows = usage_report(db.conn, ["department", "model"])
    assert rows[0] == {"department": "dep_a", "department_name": None, "model": "gpt-4o",
                       "requests": 2,
                       "prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
                       "cost_micros": 150, "cache_hits": 1}
    assert {(r["department"], r["model"]) for r in rows} == {
        ("dep_a", "gpt-4o"), ("dep_a", "gemma"), ("dep_b", "gpt-4o")}
    days = usage_report(db.conn, ["day"])
    assert {r["day"]: r["requests"] for r in days} == {"2025-03-31": 2, "2025-04-01": 2}
    since = parse_time("2025-04-01", "since")
    assert usage_report(db.conn, [], since, None)[0]["requests"] == 2
    assert usage_report(db.conn, [], None, since)[0]["cost_micros"] == 150
    assert usage_report(db.conn, [], DAY2 + 1, None)[0]["requests"] == 0
    db.close()


def test_bad_parameters_name_the_param(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    with pytest.raises(InvalidRequest) as bad:
        usage_report(db.conn, ["department", "colour"])
    assert bad.value.param == "group_by" and bad.value.status == 400
    with pytest.raises(InvalidRequest) as twice:
        usage_report(db.conn, ["day", "day"])
    assert twice.value.param == "group_by"
    with pytest.raises(InvalidRequest) as when:
        parse_time("last tuesday", "until")
    assert when.value.param == "until"
    assert parse_time("1743465540", "since") == DAY1
    assert parse_time("2025-03-31T23:59:00Z", "since") == DAY1
    db.close()


def test_formats() -> None:
    rows: list[dict[str, Any]] = [{"model": "gpt-4o", "requests": 2, "prompt_tokens": 20, "completion_tokens": 10,
             "total_tokens": 30, "cost_micros": 1_500_000, "cache_hits": 1},
            {"model": None, "requests": 1, "prompt_tokens": 1, "completion_tokens": 1,
             "total_tokens": 2, "cost_micros": 0, "cache_hits": 0}]
    assert format_csv(rows, ["model"]).splitlines() == [
        "model,requests,prompt_tokens,completion_tokens,total_tokens,cost_micros,cache_hits",
        "gpt-4o,2,20,10,30,1500000,1", ",1,1,1,2,0,0"]
    table = format_table(rows, ["model"]).splitlines()
    assert table[0].startswith("MODEL ") and table[0].endswith("COST_USD")
    assert table[1].endswith("1.500000") and table[2].startswith("-")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser()
    commands = top.add_subparsers(dest="command", required=True)
    cli.add_parser(lambda name, help_text: commands.add_parser(name, help=help_text))
    return top


def test_cli_report_and_limits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    fill(data)
    args = parser().parse_args(["usage", "report", "--group-by", "department", "--json"])
    assert cli.run(args, data) == 0
    assert [r["department"] for r in json.loads(capsys.readouterr().out)] == ["dep_a", "dep_b"]
    assert cli.run(parser().parse_args(["usage", "report", "--csv"]), data) == 0
    assert capsys.readouterr().out.splitlines()[1] == "4,40,20,60,160,1"
    assert cli.run(parser().parse_args(["usage", "report", "--group-by", "x"]), data) == 1
    assert "Unknown group_by 'x'" in capsys.readouterr().err
    args = parser().parse_args(["limits", "set", "department", "dep_a", "--tpm", "1000",
                                "--monthly-budget-micros", "5000000"])
    assert cli.run(args, data) == 0
    capsys.readouterr()
    assert cli.run(parser().parse_args(["limits", "list", "--json"]), data) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"kind": "department", "id": "dep_a", "rpm": None, "tpm": 1000, "tpd": None,
         "monthly_budget_micros": 5000000}]


def test_reports_name_the_entities_they_group_by(tmp_path: Path) -> None:
    fill(tmp_path)
    db = StateDB(tmp_path / "state.db")
    db.conn.execute("INSERT INTO tenants(id, name, created_at) VALUES ('t1', 'Clinic', 0)")
    db.conn.execute("INSERT INTO departments(id, tenant_id, name, created_at)"
                    " VALUES ('dep_a', 't1', 'Radiology', 0)")
    rows = {r["department"]: r for r in usage_report(db.conn, ["department"])}
    assert rows["dep_a"]["department_name"] == "Radiology"
    assert rows["dep_b"]["department_name"] is None  # deleted or never known: the id stays
    assert format_csv(list(rows.values()), ["department"]).splitlines()[0].startswith(
        "department,department_name,requests")
    assert "Radiology" in format_table(list(rows.values()), ["department"])
    db.close()
