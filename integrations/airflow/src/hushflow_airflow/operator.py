"""``HushflowRunOperator``: one hushflow sync (or one task of a hushflow DAG file) as an Airflow
task.

The operator runs ``hushflow run PIPELINE --json`` with the run's data interval, logical date
and run id (which fill the file's ``{{ … }}`` templates), optionally ``--task NAME`` and
``--partition I/N``. Its XCom return value is the run's counts only. Exit code 3 (records
quarantined) is a success with a warning, or a failure with ``fail_on_quarantine=True``; exit
code 2 (the pipeline is invalid) fails without retries, since a retry would fail the same way.
The audit record names the Airflow task as the actor (``HUSHFLOW_ACTOR=airflow-task`` and the
``AIRFLOW_CTX_*`` variables in the child's environment).
"""

from __future__ import annotations

import subprocess
from typing import Any, Mapping, Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from hushflow_airflow.hook import HushflowHook

#: Exit codes of the hushflow binary.
EXIT_SUCCESS, EXIT_FAILURE, EXIT_INVALID, EXIT_PARTIAL = 0, 1, 2, 3

#: The run values the operator passes by default (Airflow fills them in for each run; an
#: unscheduled DAG's manual run may have no interval, and then none is passed).
DEFAULT_INTERVAL_START = "{{ data_interval_start.isoformat() if data_interval_start else '' }}"
DEFAULT_INTERVAL_END = "{{ data_interval_end.isoformat() if data_interval_end else '' }}"
DEFAULT_LOGICAL_DATE = "{{ logical_date.isoformat() if logical_date else '' }}"
DEFAULT_RUN_ID = "{{ run_id }}"


def partition_arg(partition: Any) -> str | None:
    """``--partition``'s value from ``"I/N"``, ``(I, N)`` or ``[I, N]`` (what ``.expand`` maps
    over); ``None`` for no partition."""
    if partition is None or partition == "":
        return None
    if isinstance(partition, str):
        index, sep, count = partition.partition("/")
        if not sep:
            raise ValueError(f"partition {partition!r} is not I/N")
    elif isinstance(partition, Sequence) and len(partition) == 2:
        index, count = partition
    else:
        raise ValueError(f"partition {partition!r} is not I/N or a pair (I, N)")
    try:
        index, count = int(index), int(count)
    except (TypeError, ValueError):
        raise ValueError(f"partition {partition!r}: I and N must be whole numbers") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"partition {partition!r}: needs 0 <= I < N")
    return f"{index}/{count}"


class HushflowRunOperator(BaseOperator):
    """Runs a hushflow pipeline file, or one task of it, as this Airflow task.

    :param pipeline: the pipeline file (a path on the worker). Templated.
    :param hushflow_task: the task of a DAG file to run (``hushflow run --task``); ``None`` for
        a one-sync file. Templated.
    :param hushflow_conn_id: the ``hushflow`` connection (binary, state directory, master key);
        see :class:`~hushflow_airflow.hook.HushflowHook`.
    :param connections: Airflow connection ids the pipeline names as ``conn:ID``.
    :param env_secrets: ``{"NAME": "conn_id.field"}`` for the pipeline's ``env:NAME``.
    :param data_interval_start: fills ``{{ data_interval_start }}``; by default the Airflow
        run's. Templated, as are ``data_interval_end``, ``logical_date`` and ``hushflow_run_id``.
    :param partition: ``"I/N"`` or ``(I, N)``: only the records whose key hashes to partition I
        of N (``hushflow run --partition``); map over it with ``.expand(partition=[…])``.
    :param conf: values for ``{{ conf.KEY }}``. Templated.
    :param fail_on_quarantine: fail when records were quarantined (exit 3) instead of warning.
    :param full_refresh: ``--full-refresh``: read an incremental source from the start.
    :param workers: ``--workers``: threads that apply the policy.
    :param binary: the hushflow binary (overrides the connection's).
    """

    template_fields = (
        "pipeline",
        "hushflow_task",
        "data_interval_start",
        "data_interval_end",
        "logical_date",
        "hushflow_run_id",
        "partition",
        "conf",
    )
    ui_color = "#e8f0ec"

    def __init__(
        self,
        *,
        pipeline: str,
        hushflow_task: str | None = None,
        hushflow_conn_id: str | None = HushflowHook.default_conn_name,
        connections: Sequence[str] = (),
        env_secrets: Mapping[str, str] | None = None,
        data_interval_start: str | None = DEFAULT_INTERVAL_START,
        data_interval_end: str | None = DEFAULT_INTERVAL_END,
        logical_date: str | None = DEFAULT_LOGICAL_DATE,
        hushflow_run_id: str | None = DEFAULT_RUN_ID,
        partition: Any = None,
        conf: Mapping[str, str] | None = None,
        fail_on_quarantine: bool = False,
        full_refresh: bool = False,
        workers: int | None = None,
        binary: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.hushflow_task = hushflow_task
        self.hushflow_conn_id = hushflow_conn_id
        self.connections = list(connections)
        self.env_secrets = dict(env_secrets or {})
        self.data_interval_start = data_interval_start
        self.data_interval_end = data_interval_end
        self.logical_date = logical_date
        self.hushflow_run_id = hushflow_run_id
        self.partition = partition
        self.conf = dict(conf or {})
        self.fail_on_quarantine = fail_on_quarantine
        self.full_refresh = full_refresh
        self.workers = workers
        self.binary = binary
        self._child: subprocess.Popen | None = None

    def hook(self) -> HushflowHook:
        return HushflowHook(
            hushflow_conn_id=self.hushflow_conn_id,
            connections=self.connections,
            env_secrets=self.env_secrets,
            binary=self.binary,
        )

    def arguments(self) -> list[str]:
        """``hushflow run``'s arguments: the file, the task, the run's values; never a secret."""
        args = ["run", str(self.pipeline), "--json"]
        if self.hushflow_task:
            args += ["--task", str(self.hushflow_task)]
        if self.data_interval_start and self.data_interval_end:
            args += [
                "--data-interval-start",
                str(self.data_interval_start),
                "--data-interval-end",
                str(self.data_interval_end),
            ]
            if self.logical_date:
                args += ["--logical-date", str(self.logical_date)]
            if self.hushflow_run_id:
                args += ["--run-id", str(self.hushflow_run_id)]
            for key, value in sorted(self.conf.items()):
                args += ["--conf", f"{key}={value}"]
        elif self.conf:
            raise AirflowFailException("conf needs the run's data interval (data_interval_start/end)")
        part = partition_arg(self.partition)
        if part:
            args += ["--partition", part]
        if self.full_refresh:
            args.append("--full-refresh")
        if self.workers:
            args += ["--workers", str(int(self.workers))]
        return args

    @staticmethod
    def actor_environment(context: Mapping[str, Any]) -> dict[str, str]:
        """The variables that make hushflow audit the run as this Airflow task try."""
        ti = context["ti"]
        env = {
            "HUSHFLOW_ACTOR": "airflow-task",
            "AIRFLOW_CTX_DAG_ID": str(ti.dag_id),
            "AIRFLOW_CTX_TASK_ID": str(ti.task_id),
            "AIRFLOW_CTX_DAG_RUN_ID": str(ti.run_id),
            "AIRFLOW_CTX_TRY_NUMBER": str(ti.try_number),
        }
        map_index = getattr(ti, "map_index", -1)
        if map_index is not None and int(map_index) >= 0:
            env["AIRFLOW_CTX_MAP_INDEX"] = str(int(map_index))
        return env

    def execute(self, context: Any) -> dict[str, int]:
        args = self.arguments()
        self.log.info("hushflow %s", " ".join(args))

        def started(child: subprocess.Popen) -> None:
            self._child = child

        result = self.hook().run(
            args,
            extra_env=self.actor_environment(context),
            log=self.log.info,
            started=started,
        )
        self._child = None
        counts = {
            k: int(v)
            for k, v in ((result.summary or {}).get("counts") or {}).items()
            if isinstance(v, (int, float))
        }
        if result.summary:
            self.log.info(
                "hushflow %s: %s",
                result.summary.get("outcome", "?"),
                ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
            )
        reason = (result.summary or {}).get("error") or (result.stderr[-1] if result.stderr else "")
        if result.returncode == EXIT_SUCCESS:
            return counts
        if result.returncode == EXIT_PARTIAL:
            message = f"hushflow quarantined {counts.get('quarantined', '?')} record(s); see `hushflow quarantine list`"
            if self.fail_on_quarantine:
                raise AirflowFailException(message)
            self.log.warning(message)
            return counts
        if result.returncode == EXIT_INVALID:
            # The file or the arguments are wrong: a retry would fail the same way.
            raise AirflowFailException(f"hushflow refused the pipeline (exit 2): {reason}")
        raise AirflowException(f"hushflow failed (exit {result.returncode}): {reason}")

    def on_kill(self) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
