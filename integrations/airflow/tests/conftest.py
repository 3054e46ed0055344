"""Fixtures: a private AIRFLOW_HOME, connections given as AIRFLOW_CONN_* variables (Airflow's
environment secrets backend, as in production), and a stand-in for the hushflow binary that
reports what it received (argv, and which variables it got) and exits as told.

The real binary is exercised by the Airflow integration tests (scripts/test.sh); these check the
provider's own logic."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap

import pytest

CANARY = "canary-Zq9xW3vB7tLp2sK8"


@pytest.fixture(autouse=True)
def airflow_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    return tmp_path / "airflow"


@pytest.fixture
def fake_binary(tmp_path):
    """A script that writes its argv and environment (names, and whether the canary is in each
    value) to report.json, prints a summary line like `hushflow run --json` and exits with
    FAKE_EXIT."""
    report = tmp_path / "report.json"
    script = tmp_path / "hushflow"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import json, os, sys
            canary = {CANARY!r}
            with open({str(report)!r}, "w") as f:
                json.dump({{"argv": sys.argv[1:], "env": dict(os.environ)}}, f)
            code = int(os.environ.get("FAKE_EXIT", "0"))
            print("a line of output", flush=True)
            print("a note", file=sys.stderr, flush=True)
            counts = {{"read": 10, "written": 8, "filtered": 1, "quarantined": 1}}
            outcome = {{0: "success", 3: "partial"}}.get(code, "failure")
            print(json.dumps({{"version": 1, "outcome": outcome, "counts": counts,
                               "error": None if code in (0, 3) else "sink.path: refused"}}))
            sys.exit(code)
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)

    class Fake:
        path = script

        def __str__(self) -> str:
            return str(script)

        @staticmethod
        def report():
            return json.loads(report.read_text())

    return Fake()


@pytest.fixture
def connections(monkeypatch, fake_binary):
    """A hushflow connection (binary, master key, an `env` extra) and a CRM connection whose
    password is the canary."""
    hushflow = {
        "conn_type": "hushflow",
        "password": "master-key-" + CANARY,
        "extra": {"binary": str(fake_binary), "state_dir": "/tmp/hf-state", "env": {"FAKE_EXIT": "0"}},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HUSHFLOW_DEFAULT", json.dumps(hushflow))
    crm = {"conn_type": "postgres", "login": "sync", "password": CANARY, "host": "db.example", "port": 5432, "schema": "crm"}
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps(crm))

    def exit_with(code: int) -> None:
        hushflow["extra"]["env"]["FAKE_EXIT"] = str(code)
        monkeypatch.setenv("AIRFLOW_CONN_HUSHFLOW_DEFAULT", json.dumps(hushflow))

    return exit_with
