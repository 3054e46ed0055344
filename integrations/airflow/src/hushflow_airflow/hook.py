"""``HushflowHook``: runs the hushflow binary with secrets from Airflow connections.

Secrets reach the binary through the child's environment only, never its command line (any
user on the machine can read another process's argv from ``/proc/PID/cmdline``; its
environment only the same user can). A pipeline names them by reference:

* ``env:NAME``: the hook sets ``NAME`` from a field of an Airflow connection
  (``env_secrets={"HUBSPOT_TOKEN": "hubspot.password"}``) or from the ``env`` extra of the
  hushflow connection;
* ``conn:NAME``: the hook sets ``HUSHFLOW_CONN_NAME`` to the Airflow connection ``NAME`` as a URI
  (``connections=["crm_db"]``), where hushflow's ``conn:`` lookup reads it first.

The hushflow connection (type ``hushflow``, default id ``hushflow_default``) describes the
installation: its password is the keyring's master key (``HUSHFLOW_MASTER_KEY``), its extras
``binary`` (the path of the ``hushflow`` binary), ``state_dir`` (``HUSHFLOW_STATE_DIR``),
``metadata`` (a secret reference for ``HUSHFLOW_METADATA``) and ``env`` (a JSON object of
environment variables for ``env:`` references).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException

#: Variables of the Airflow worker that the hushflow child does not get: Airflow's own
#: connections, variables and configuration (which hold the metadata database's URL, the
#: Fernet key, other connections' passwords).
WITHHELD_PREFIXES = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__")

#: The connection fields ``env_secrets`` may name (``CONN_ID.FIELD``), besides ``extra.KEY``.
CONNECTION_FIELDS = ("login", "password", "host", "port", "schema", "uri")

#: Values at least this long are checked against the arguments (shorter ones match by chance).
MIN_CHECKED_SECRET = 8

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def conn_env_name(conn_id: str) -> str:
    """The variable hushflow's ``conn:NAME`` lookup reads first: ``HUSHFLOW_CONN_`` and the name
    upper-cased, every character other than a letter or digit turned into ``_``."""
    return "HUSHFLOW_CONN_" + re.sub(r"[^A-Za-z0-9]", "_", conn_id).upper()


@dataclass
class HushflowResult:
    """How a run of the binary ended: its exit code, the JSON summary it printed last (counts,
    never values) and its other output lines (hushflow masks every secret it resolved)."""

    returncode: int
    summary: dict | None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


class HushflowHook(BaseHook):
    """Resolves Airflow connections into the environment of a hushflow child process and runs it.

    :param hushflow_conn_id: the ``hushflow`` connection describing the installation (binary,
        state directory, master key, ``env`` extras); ``None`` for none.
    :param connections: Airflow connection ids handed over whole as ``conn:ID`` references.
    :param env_secrets: environment variables for ``env:NAME`` references, each from a
        connection field: ``{"NAME": "conn_id.password"}`` (``login``, ``password``, ``host``,
        ``port``, ``schema``, ``uri`` or ``extra.KEY``).
    :param binary: the hushflow binary; else the connection's ``binary`` extra, else ``hushflow``
        on ``PATH``.
    """

    conn_name_attr = "hushflow_conn_id"
    default_conn_name = "hushflow_default"
    conn_type = "hushflow"
    hook_name = "hushflow"

    def __init__(
        self,
        hushflow_conn_id: str | None = default_conn_name,
        connections: Iterable[str] = (),
        env_secrets: Mapping[str, str] | None = None,
        binary: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hushflow_conn_id = hushflow_conn_id
        self.connections = list(connections)
        self.env_secrets = dict(env_secrets or {})
        self.binary = binary
        for name in self.env_secrets:
            if not _ENV_NAME.match(name):
                raise ValueError(f"env_secrets: {name!r} is not an environment variable name")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form: the password is the master key; the rest goes in extras."""
        return {
            "hidden_fields": ["port", "schema", "login", "host"],
            "relabeling": {"password": "Master key (HUSHFLOW_MASTER_KEY)"},
            "placeholders": {
                "extra": json.dumps(
                    {
                        "binary": "/usr/local/bin/hushflow",
                        "state_dir": "/var/lib/hushflow",
                        "env": {"HUBSPOT_TOKEN": "…"},
                    }
                ),
            },
        }

    # The secrets -------------------------------------------------------------------------

    def _field(self, conn_id: str, name: str) -> str | None:
        conn = self.get_connection(conn_id)
        if name == "uri":
            return conn.get_uri()
        if name.startswith("extra."):
            value = conn.extra_dejson.get(name[len("extra.") :])
            return None if value is None else str(value)
        if name not in CONNECTION_FIELDS:
            raise ValueError(
                f"env_secrets: field {name!r} of connection {conn_id!r} is not one of "
                f"{', '.join(CONNECTION_FIELDS)} or extra.KEY"
            )
        value = getattr(conn, name)
        return None if value is None else str(value)

    def settings(self) -> tuple[str, dict[str, str], list[str]]:
        """The binary, the variables the child gets beyond the worker's own, and which of those
        are secret (their values, to keep them off the command line and out of the logs)."""
        env: dict[str, str] = {}
        secrets: list[str] = []
        binary = self.binary
        if self.hushflow_conn_id:
            conn = self.get_connection(self.hushflow_conn_id)
            extra = conn.extra_dejson
            binary = binary or extra.get("binary")
            if conn.password:
                env["HUSHFLOW_MASTER_KEY"] = conn.password
                secrets.append(conn.password)
            for key, var in (("state_dir", "HUSHFLOW_STATE_DIR"), ("metadata", "HUSHFLOW_METADATA")):
                if extra.get(key):
                    env[var] = str(extra[key])
            extra_env = extra.get("env") or {}
            if not isinstance(extra_env, dict):
                raise ValueError(f"connection {self.hushflow_conn_id!r}: extra `env` must be an object")
            for name, value in extra_env.items():
                if not _ENV_NAME.match(str(name)):
                    raise ValueError(
                        f"connection {self.hushflow_conn_id!r}: extra `env` key {name!r} is not an "
                        "environment variable name"
                    )
                env[str(name)] = str(value)
                secrets.append(str(value))
        for conn_id in self.connections:
            uri = self.get_connection(conn_id).get_uri()
            env[conn_env_name(conn_id)] = uri
            secrets.append(uri)
        for name, ref in self.env_secrets.items():
            conn_id, _, field_name = ref.partition(".")
            if not conn_id or not field_name:
                raise ValueError(f"env_secrets: {name} = {ref!r} is not CONN_ID.FIELD")
            value = self._field(conn_id, field_name)
            if value is None:
                raise ValueError(f"env_secrets: connection {conn_id!r} has no {field_name}")
            env[name] = value
            secrets.append(value)
        binary = binary or shutil.which("hushflow") or "hushflow"
        secrets = [s for s in secrets if s]
        _mask(secrets)
        return binary, env, secrets

    @staticmethod
    def child_environment(extra: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The worker's environment without Airflow's secrets (:data:`WITHHELD_PREFIXES`), plus
        ``extra``."""
        base = os.environ if base is None else base
        env = {k: v for k, v in base.items() if not k.startswith(WITHHELD_PREFIXES)}
        env.update(extra)
        return env

    # Running -----------------------------------------------------------------------------

    def run(
        self,
        args: Sequence[str],
        extra_env: Mapping[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        started: Callable[[subprocess.Popen], None] | None = None,
    ) -> HushflowResult:
        """Runs ``hushflow ARGS``, the secrets in its environment; returns its exit code and the
        last JSON object it printed. Refuses arguments that hold a secret's value.

        ``log`` gets each line of output as it comes; ``started`` the child process (so that an
        operator can stop it when Airflow kills the task)."""
        binary, env, secrets = self.settings()
        # Short values (a flag's "0", a region) would match by chance; a secret is longer.
        checked = [s for s in secrets if len(s) >= MIN_CHECKED_SECRET]
        for arg in args:
            if any(s in arg for s in checked):
                raise AirflowException(
                    "an argument holds the value of a secret; refused (secrets go through the "
                    "environment only)"
                )
        env.update(extra_env or {})
        log = log or self.log.info
        child = subprocess.Popen(
            [binary, *args],
            env=self.child_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if started:
            started(child)
        stderr: list[str] = []

        def drain() -> None:
            assert child.stderr is not None
            for line in child.stderr:
                stderr.append(line.rstrip("\n"))
                log(line.rstrip("\n"))

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        stdout: list[str] = []
        summary = None
        try:
            assert child.stdout is not None
            for line in child.stdout:
                line = line.rstrip("\n")
                parsed = _json_object(line)
                if parsed is not None:
                    summary = parsed
                else:
                    stdout.append(line)
                    log(line)
            returncode = child.wait()
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
            reader.join(timeout=10)
        return HushflowResult(returncode=returncode, summary=summary, stdout=stdout, stderr=stderr)


def _json_object(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _mask(secrets: Iterable[str]) -> None:
    """Registers values with Airflow's log masker (a second line of defence: hushflow masks what
    it resolves itself)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older Task SDKs
        return
    for s in secrets:
        mask_secret(s)
