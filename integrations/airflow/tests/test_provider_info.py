"""The provider registers with Airflow as the docs say."""

from importlib import metadata

import hushflow_airflow


def test_entry_point_names_get_provider_info():
    eps = metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in eps if ep.dist and ep.dist.metadata["Name"] == "hushflow-airflow"]
    assert len(ours) == 1
    assert ours[0].load() is hushflow_airflow.get_provider_info


def test_package_name_is_the_distribution_name():
    info = hushflow_airflow.get_provider_info()
    assert info["package-name"] == metadata.metadata("hushflow-airflow")["Name"]
    assert info["versions"] == [metadata.version("hushflow-airflow")]
    assert info["connection-types"] == [
        {"hook-class-name": "hushflow_airflow.hook.HushflowHook", "connection-type": "hushflow", "hook-name": "hushflow"}
    ]


def test_provider_info_matches_airflows_schema():
    import json
    import pathlib

    import airflow
    import jsonschema

    schema = json.loads((pathlib.Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(hushflow_airflow.get_provider_info(), schema)


def test_airflows_providers_manager_finds_the_connection_type():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    assert "hushflow-airflow" in ProvidersManager().providers
    hooks = ProvidersManagerTaskRuntime().hooks
    assert hooks["hushflow"].hook_class_name == "hushflow_airflow.hook.HushflowHook"
