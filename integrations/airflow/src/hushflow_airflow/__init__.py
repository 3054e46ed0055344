"""Apache Airflow 3 provider for hushflow.

Airflow finds it through the ``apache_airflow_provider`` entry point, which names
:func:`get_provider_info`.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "hushflow-airflow"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # imported from a source tree, not installed
        return "0.0.0"


__version__ = _version()


def get_provider_info() -> dict:
    """What Airflow's providers manager reads: the package, its hook and its connection type."""
    return {
        "package-name": DISTRIBUTION,
        "name": "hushflow",
        "description": "Run hushflow pipelines (privacy-first contact sync) as Airflow tasks; "
        "secrets come from Airflow connections and reach the binary through its "
        "environment only.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "hushflow",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "hushflow",
                "python-modules": ["hushflow_airflow.operator"],
            }
        ],
        "hooks": [
            {
                "integration-name": "hushflow",
                "python-modules": ["hushflow_airflow.hook"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "hushflow_airflow.hook.HushflowHook",
                "connection-type": "hushflow",
                "hook-name": "hushflow",
            }
        ],
    }
