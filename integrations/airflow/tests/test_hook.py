"""HushflowHook: connections become the child's environment, never its argv."""

import pytest
from airflow.sdk.exceptions import AirflowException

from conftest import CANARY
from hushflow_airflow.hook import HushflowHook, conn_env_name


def test_conn_env_name_is_what_hushflows_conn_lookup_reads():
    assert conn_env_name("crm-db.eu") == "HUSHFLOW_CONN_CRM_DB_EU"
    assert conn_env_name("crm_db") == "HUSHFLOW_CONN_CRM_DB"


def test_settings_map_connections_to_variables(connections, fake_binary):
    hook = HushflowHook(connections=["crm_db"], env_secrets={"CRM_PASSWORD": "crm_db.password", "CRM_USER": "crm_db.login"})
    binary, env, secrets = hook.settings()
    assert binary == str(fake_binary)
    assert env["HUSHFLOW_MASTER_KEY"] == "master-key-" + CANARY
    assert env["HUSHFLOW_STATE_DIR"] == "/tmp/hf-state"
    assert env["HUSHFLOW_CONN_CRM_DB"].startswith("postgres://sync:" + CANARY + "@db.example:5432/crm")
    assert env["CRM_PASSWORD"] == CANARY
    assert env["CRM_USER"] == "sync"
    assert CANARY in secrets


def test_bad_env_secrets_are_refused(connections):
    with pytest.raises(ValueError, match="not an environment variable name"):
        HushflowHook(env_secrets={"BAD-NAME": "crm_db.password"})
    with pytest.raises(ValueError, match="CONN_ID.FIELD"):
        HushflowHook(env_secrets={"X": "crm_db"}).settings()
    with pytest.raises(ValueError, match="not one of"):
        HushflowHook(env_secrets={"X": "crm_db.fernet"}).settings()


def test_child_environment_withholds_airflows_secrets():
    base = {"PATH": "/bin", "AIRFLOW_CONN_X": "s", "AIRFLOW_VAR_Y": "s", "AIRFLOW__CORE__FERNET_KEY": "s", "AIRFLOW_CTX_DAG_ID": "d"}
    env = HushflowHook.child_environment({"A": "1"}, base)
    assert env == {"PATH": "/bin", "AIRFLOW_CTX_DAG_ID": "d", "A": "1"}


def test_run_passes_secrets_in_the_environment_only(connections, fake_binary):
    hook = HushflowHook(connections=["crm_db"], env_secrets={"CRM_PASSWORD": "crm_db.password"})
    lines = []
    result = hook.run(["run", "p.toml", "--json"], extra_env={"HUSHFLOW_ACTOR": "airflow-task"}, log=lines.append)
    seen = fake_binary.report()
    assert seen["argv"] == ["run", "p.toml", "--json"]
    assert not any(CANARY in a for a in seen["argv"])
    assert seen["env"]["CRM_PASSWORD"] == CANARY
    assert seen["env"]["HUSHFLOW_ACTOR"] == "airflow-task"
    assert not any(k.startswith("AIRFLOW_CONN_") for k in seen["env"])
    assert result.returncode == 0
    assert result.summary["counts"]["written"] == 8
    assert "a line of output" in lines and "a note" in lines


def test_run_refuses_an_argument_holding_a_secret(connections):
    hook = HushflowHook(env_secrets={"CRM_PASSWORD": "crm_db.password"})
    with pytest.raises(AirflowException, match="environment only"):
        hook.run(["run", "--conf", "x=" + CANARY])
