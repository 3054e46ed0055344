"""HushflowRunOperator: arguments, the actor, XCom and exit codes."""

from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from conftest import CANARY
from hushflow_airflow.operator import HushflowRunOperator, partition_arg


def context(map_index=-1):
    ti = SimpleNamespace(dag_id="nightly", task_id="load", run_id="manual__2026-12-01T00:00:00+00:00", try_number=2, map_index=map_index)
    return {"ti": ti}


def operator(**kwargs):
    kwargs.setdefault("task_id", "load")
    kwargs.setdefault("pipeline", "/pipelines/nightly.toml")
    # What Airflow's templating gives for a scheduled run.
    kwargs.setdefault("data_interval_start", "2026-12-01T00:00:00+00:00")
    kwargs.setdefault("data_interval_end", "2026-12-02T00:00:00+00:00")
    kwargs.setdefault("logical_date", "2026-12-01T00:00:00+00:00")
    kwargs.setdefault("hushflow_run_id", "scheduled__2026-12-01T00:00:00+00:00")
    return HushflowRunOperator(**kwargs)


@pytest.mark.parametrize(
    "given, wanted",
    [(None, None), ("", None), ("1/4", "1/4"), ((3, 4), "3/4"), ([0, 1], "0/1")],
)
def test_partition_forms(given, wanted):
    assert partition_arg(given) == wanted


@pytest.mark.parametrize("bad", ["4/4", "1", (1,), ("a", 2), (-1, 2), (0, 0)])
def test_bad_partitions_are_refused(bad):
    with pytest.raises(ValueError):
        partition_arg(bad)


def test_template_fields_cover_the_run_values():
    for name in ("pipeline", "hushflow_task", "data_interval_start", "data_interval_end", "logical_date", "hushflow_run_id", "partition", "conf"):
        assert name in HushflowRunOperator.template_fields


def test_arguments_carry_the_run_values_and_no_secret():
    op = operator(hushflow_task="load", partition=(1, 4), conf={"region": "eu"}, full_refresh=True, workers=2)
    assert op.arguments() == [
        "run", "/pipelines/nightly.toml", "--json", "--task", "load",
        "--data-interval-start", "2026-12-01T00:00:00+00:00",
        "--data-interval-end", "2026-12-02T00:00:00+00:00",
        "--logical-date", "2026-12-01T00:00:00+00:00",
        "--run-id", "scheduled__2026-12-01T00:00:00+00:00",
        "--conf", "region=eu", "--partition", "1/4", "--full-refresh", "--workers", "2",
    ]


def test_without_an_interval_none_is_passed():
    op = operator(data_interval_start="", data_interval_end="")
    assert op.arguments() == ["run", "/pipelines/nightly.toml", "--json"]


def test_actor_environment_names_the_task_try():
    env = HushflowRunOperator.actor_environment(context(map_index=3))
    assert env == {
        "HUSHFLOW_ACTOR": "airflow-task",
        "AIRFLOW_CTX_DAG_ID": "nightly",
        "AIRFLOW_CTX_TASK_ID": "load",
        "AIRFLOW_CTX_DAG_RUN_ID": "manual__2026-12-01T00:00:00+00:00",
        "AIRFLOW_CTX_TRY_NUMBER": "2",
        "AIRFLOW_CTX_MAP_INDEX": "3",
    }
    assert "AIRFLOW_CTX_MAP_INDEX" not in HushflowRunOperator.actor_environment(context())


def test_success_returns_the_counts_only(connections, fake_binary):
    op = operator(env_secrets={"CRM_PASSWORD": "crm_db.password"})
    counts = op.execute(context())
    assert counts == {"read": 10, "written": 8, "filtered": 1, "quarantined": 1}
    seen = fake_binary.report()
    assert seen["env"]["AIRFLOW_CTX_TASK_ID"] == "load"
    assert CANARY not in " ".join(seen["argv"])


def test_quarantine_warns_or_fails(connections, caplog):
    connections(3)
    assert operator().execute(context())["quarantined"] == 1
    with pytest.raises(AirflowFailException, match="quarantined 1"):
        operator(fail_on_quarantine=True).execute(context())


def test_invalid_pipeline_fails_without_retry_and_failure_retries(connections):
    connections(2)
    with pytest.raises(AirflowFailException, match="exit 2.*sink.path: refused"):
        operator().execute(context())
    connections(1)
    with pytest.raises(AirflowException, match="exit 1") as e:
        operator().execute(context())
    assert not isinstance(e.value, AirflowFailException)
