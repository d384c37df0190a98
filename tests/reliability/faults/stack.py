"""A private local stack for fault injection, and the faults themselves.

:class:`PrivateStack` runs ``deploy/local/stack.py`` with its environment overrides
(``ABFLOW_STACK_DIR`` under the temporary directory, every ``ABFLOW_*_PORT`` in the
20000-31999 range), so that stopping its Kafka broker or its PostgreSQL server never touches
the shared stack (19092 / 15432) that other test runs use. Single components are stopped
and started with stack.py's own functions (``stop_pid("kafka")``, ``start_kafka()``,
``stop_postgres()``, ``start_postgres()``), called in a child interpreter that sees the
same overrides; stack.py itself is not changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.ports import port_free

ROOT = Path(__file__).resolve().parents[3]
STACK_PY = ROOT / "deploy" / "local" / "stack.py"
SERVICES = ("assignment", "analysis", "aggregator", "console")

LONG = os.environ.get("RELIABILITY_LONG", "") not in ("", "0", "false", "no")
"""``RELIABILITY_LONG=1``: longer streams, more restarts."""

# scope of the key each kind of call sends (when the stack provisioned keys)
_SCOPE_KEYS = {"admin": "ADMIN_API_KEY", "read": "READ_API_KEY", "client": "CLIENT_API_KEY"}


def pick_ports() -> dict[str, int]:
    """Eight free ports ``B092, B093, B432, B001..B004, B080`` for a random block B000
    in 20000-31000: below the kernel's ephemeral range (32768-60999 by default), so that no
    outgoing connection can take one as its source port (a client reconnecting to a
    stopped broker could otherwise connect to itself and hold the broker's port)."""
    offsets = {
        "KAFKA": 92,
        "KAFKA_CONTROLLER": 93,
        "PG": 432,
        "ASSIGNMENT": 1,
        "ANALYSIS": 2,
        "AGGREGATOR": 3,
        "CONSOLE": 4,
        "GATEWAY": 80,
    }
    bases = list(range(20_000, 31_001, 1_000))
    random.shuffle(bases)
    for base in bases:
        ports = {name: base + off for name, off in offsets.items()}
        if all(port_free(p) for p in ports.values()):
            return ports
    raise RuntimeError("no free block of ports in 20000-31999")


@dataclass
class PrivateStack:
    """Kafka, PostgreSQL and the four services of one private local stack."""

    directory: Path
    ports: dict[str, int]
    env_overrides: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    #: keys of our own (scope -> key), given to the services through ``API_KEYS``
    own_keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls) -> PrivateStack:
        directory = Path(tempfile.mkdtemp(prefix="abflow-faults-"))
        directory.chmod(0o755)  # the postgres user must traverse it
        ports = pick_ports()
        overrides = {f"ABFLOW_{name}_PORT": str(port) for name, port in ports.items()}
        overrides["ABFLOW_STACK_DIR"] = str(directory)
        overrides.setdefault(
            "ABFLOW_KAFKA_HEAP", os.environ.get("ABFLOW_FAULTS_KAFKA_HEAP", "512m")
        )
        # API keys: ours, written where stack.py looks for the stack's keys (keys.json;
        # it then provisions these) and given as API_KEYS to whatever it starts
        keys = {scope: "abf_" + secrets.token_urlsafe(32) for scope in _SCOPE_KEYS}
        (directory / "keys.json").write_text(json.dumps(keys))
        (directory / "keys.json").chmod(0o600)
        overrides["API_KEYS"] = ",".join(
            f"local-{scope}:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"
            for scope, key in keys.items()
        )
        return cls(directory, ports, overrides, own_keys=keys)

    # -- running stack.py ---------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ABFLOW_")}
        # the services read these: never let the shared stack's values leak in
        for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "TOPIC_PREFIX", "API_KEYS"):
            env.pop(name, None)
        env.update(self.env_overrides)
        return env

    def run(self, *args: str, code: str | None = None, timeout: float | None = None) -> str:
        """``stack.py args...`` (timeout 300 s), or with ``code`` that Python code run with
        stack.py imported as ``stack`` (timeout 180 s), under the same overrides; returns
        the output, raises with it when it fails."""
        if code is None:
            argv, cwd, what = [str(STACK_PY), *args], ROOT, f"stack.py {' '.join(args)}"
        else:
            argv, cwd, what = (
                ["-c", f"import stack\n{code}"],
                STACK_PY.parent,
                f"stack call {code!r}",
            )
        if timeout is None:
            timeout = 300 if code is None else 180
        res = subprocess.run(
            [sys.executable, *argv],
            env=self._env(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        out = res.stdout + res.stderr
        if res.returncode != 0:
            raise RuntimeError(f"{what} failed ({res.returncode}):\n{out}")
        return out

    def up(self) -> None:
        self.run("up", "--only", *SERVICES)
        self.read_env()

    def down(self) -> None:
        try:
            self.run("down", timeout=180)
        finally:
            # whatever stack.py could not stop (it only knows pid files)
            for name in ("kafka", *SERVICES):
                pid = self.pid(name)
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def read_env(self) -> dict[str, str]:
        """``<stack dir>/env`` (``export K=V`` lines) into :attr:`values`."""
        values: dict[str, str] = {}
        path = self.directory / "env"
        if path.exists():
            for line in path.read_text().splitlines():
                line = line.strip().removeprefix("export ").strip()
                if "=" in line and not line.startswith("#"):
                    k, v = line.split("=", 1)
                    values[k] = v.strip().strip("'\"")
        self.values = values
        return values

    # -- what tests need ------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return self.values.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{self.ports['KAFKA']}")

    @property
    def database_url(self) -> str:
        return self.values.get(
            "DATABASE_URL", f"postgresql://abflow:abflow@127.0.0.1:{self.ports['PG']}/abflow"
        )

    def url(self, service: str) -> str:
        return self.values.get(
            f"{service.upper()}_URL", f"http://127.0.0.1:{self.ports[service.upper()]}"
        )

    def headers(self, scope: str) -> dict[str, str]:
        """``Authorization: Bearer <key>`` when the stack wrote keys, else nothing."""
        key = self.values.get(_SCOPE_KEYS[scope]) or self.own_keys.get(scope)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def client(
        self, scope: str, service: str = "assignment", timeout: float = 10.0
    ) -> httpx.AsyncClient:
        """An HTTP client of ``service`` sending the key of ``scope``."""
        return httpx.AsyncClient(
            base_url=self.url(service), timeout=timeout, headers=self.headers(scope)
        )

    def service_env(self) -> dict[str, str]:
        """The environment stack.py gives the services (infrastructure and keys)."""
        env = {"API_KEYS": self.env_overrides.get("API_KEYS", "")}
        env.update(self.values)
        return env

    def pid(self, name: str) -> int | None:
        path = self.directory / "pids" / f"{name}.pid"
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def log(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    # -- faults -----------------------------------------------------------------------
    def stop_kafka(self, *, kill: bool = False) -> float:
        """SIGTERM (controlled shutdown, stack.py's ``stop_pid``) or SIGKILL the broker;
        returns the seconds it took."""
        started = time.monotonic()
        if kill:
            pid = self.pid("kafka")
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                while _alive(pid) and time.monotonic() - started < 20:
                    time.sleep(0.05)
        else:
            self.run(code="stack.stop_pid('kafka', timeout=40)")
        return time.monotonic() - started

    def start_kafka(self) -> float:
        started = time.monotonic()
        self.run(code="stack.start_kafka()")
        return time.monotonic() - started

    def stop_postgres(self, *, mode: str = "immediate") -> float:
        """``pg_ctl stop -m immediate`` (a crash: no checkpoint, connections cut) or
        ``-m fast``; returns the seconds it took."""
        started = time.monotonic()
        self.run(
            code="import subprocess\n"
            "data, _ = stack.pg_dirs()\n"
            "subprocess.run(stack.as_pg_user([str(stack.pg_bindir() / 'pg_ctl'), '-D', "
            f"str(data), '-m', {mode!r}, '-w', '-t', '60', 'stop']), check=True, "
            "capture_output=True)"
        )
        return time.monotonic() - started

    def start_postgres(self) -> float:
        started = time.monotonic()
        self.run(code="stack.start_postgres()")
        return time.monotonic() - started

    def start_service(self, name: str) -> None:
        """(Re)start one service the way ``up`` does (no-op when it is healthy)."""
        self.run("up", "--only", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
