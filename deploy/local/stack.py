#!/usr/bin/env python3
"""Local stack without Docker: Apache Kafka (KRaft, from Maven jars), PostgreSQL
(Debian's server), and the platform's services, each a background process with a
pid file under `.stack/`.

Usage: python3 deploy/local/stack.py {up,down,infra-up,status,env} [--only NAME ...]

Only the standard library is used, so it runs before the virtualenv exists.
API keys: the first `up` (or `infra-up`) generates one random key per scope into
`.stack/keys.json` (mode 0600, kept across `down`/`up`); the services get their hashes
as `API_KEYS` (principals `local-admin`, `local-read`, `local-client`) and `.stack/env`
exports the keys themselves as `ADMIN_API_KEY`, `READ_API_KEY`, `CLIENT_API_KEY`.
Errors are reported as one line starting with "error:" and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK = Path(os.environ.get("ABFLOW_STACK_DIR", ROOT / ".stack"))
PIDS = STACK / "pids"
LOGS = STACK / "logs"
CACHE = Path(os.environ.get("ABFLOW_CACHE_DIR", ROOT / "deploy" / "local" / "cache"))
KAFKA_LIBS = CACHE / "kafka-libs"
POM = ROOT / "deploy" / "local" / "kafka" / "pom.xml"
VENV_PY = ROOT / ".venv" / "bin" / "python"

HOST = "127.0.0.1"
KAFKA_PORT = int(os.environ.get("ABFLOW_KAFKA_PORT", "19092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("ABFLOW_KAFKA_CONTROLLER_PORT", "19093"))
PG_PORT = int(os.environ.get("ABFLOW_PG_PORT", "15432"))
PG_USER = "abflow"
PG_PASSWORD = "abflow"
PG_DB = "abflow"
KAFKA_HEAP = os.environ.get("ABFLOW_KAFKA_HEAP", "768m")


class StackError(Exception):
    """A failure that the user can act on; printed as one line."""


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


# --------------------------------------------------------------------------- helpers


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0): reap it if it is ours
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def read_pid(name: str) -> int | None:
    f = PIDS / f"{name}.pid"
    if not f.exists():
        return None
    try:
        pid = int(f.read_text().strip())
    except ValueError:
        return None
    return pid if pid_alive(pid) else None


def wait_until(check: Callable[[], bool], timeout: float, what: str, logfile: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    hint = f" (see {logfile})" if logfile else ""
    raise StackError(f"{what} not ready after {timeout:.0f}s{hint}")


def require_port_free(port: int, service: str, env_var: str) -> None:
    if port_open(port):
        raise StackError(
            f"port {port} needed by {service} is already in use by another process; "
            f"stop it or choose another port with {env_var}=<port>"
        )


def spawn(
    name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    logfile = LOGS / f"{name}.log"
    with logfile.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(cwd or ROOT),
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    (PIDS / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def stop_pid(name: str, timeout: float = 20.0) -> None:
    pid = read_pid(name)
    pidfile = PIDS / f"{name}.pid"
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        log(f"{name} did not stop in {timeout:.0f}s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.5)
    pidfile.unlink(missing_ok=True)


# --------------------------------------------------------------------------- Kafka


def kafka_classpath() -> str:
    if not shutil.which("java"):
        raise StackError(
            "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
        )
    jars = sorted(KAFKA_LIBS.glob("*.jar")) if KAFKA_LIBS.is_dir() else []
    if not any(j.name.startswith("kafka_2.13-") for j in jars):
        if not shutil.which("mvn"):
            raise StackError(
                "mvn not found: install Maven (apt-get install maven) to resolve the Kafka jars"
            )
        log(f"resolving Kafka jars with Maven into {KAFKA_LIBS} (first run only)")
        KAFKA_LIBS.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={KAFKA_LIBS}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            tail = (res.stdout + res.stderr).strip().splitlines()[-3:]
            raise StackError("Maven could not resolve the Kafka jars: " + " | ".join(tail))
        jars = sorted(KAFKA_LIBS.glob("*.jar"))
    return ":".join(str(j) for j in jars)


def kafka_properties(data_dir: Path) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{HOST}:{KAFKA_CONTROLLER_PORT}",
            f"listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "group.min.session.timeout.ms=1000",
            "auto.create.topics.enable=false",
            "delete.topic.enable=true",
            "log.retention.check.interval.ms=60000",
            "log.cleaner.backoff.ms=1000",
            "num.network.threads=2",
            "num.io.threads=4",
            "message.max.bytes=2097152",
            "",
        ]
    )


def kafka_ready(logfile: Path) -> bool:
    if not port_open(KAFKA_PORT):
        return False
    try:
        return "Kafka Server started" in logfile.read_text(errors="replace")
    except OSError:
        return False


def start_kafka() -> None:
    if read_pid("kafka") and port_open(KAFKA_PORT):
        log(f"kafka already running on {HOST}:{KAFKA_PORT}")
        return
    stop_pid("kafka")
    require_port_free(KAFKA_PORT, "Kafka", "ABFLOW_KAFKA_PORT")
    require_port_free(KAFKA_CONTROLLER_PORT, "the Kafka controller", "ABFLOW_KAFKA_CONTROLLER_PORT")
    cp = kafka_classpath()
    kdir = STACK / "kafka"
    data = kdir / "data"
    kdir.mkdir(parents=True, exist_ok=True)
    props = kdir / "server.properties"
    props.write_text(kafka_properties(data))
    log4j = ROOT / "deploy" / "local" / "kafka" / "log4j2.xml"
    jvm = [
        "java",
        "-Xms256m",
        f"-Xmx{KAFKA_HEAP}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={LOGS}",
        "-cp",
        cp,
    ]
    if not (data / "meta.properties").exists():
        data.mkdir(parents=True, exist_ok=True)
        cluster_id = (
            subprocess.run(
                [*jvm, "kafka.tools.StorageTool", "random-uuid"],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        res = subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise StackError(
                "Kafka storage format failed: " + (res.stdout + res.stderr).strip()[-300:]
            )
        log(f"formatted Kafka storage (cluster {cluster_id})")
    logfile = LOGS / "kafka.log"
    logfile.unlink(missing_ok=True)
    spawn("kafka", [*jvm, "kafka.Kafka", str(props)])
    log("starting kafka …")
    pid = read_pid("kafka")

    def ready() -> bool:
        if read_pid("kafka") is None:
            raise StackError(f"Kafka exited during start-up (see {logfile}; pid was {pid})")
        return kafka_ready(logfile)

    wait_until(ready, 120, "Kafka", logfile)
    log(f"kafka ready on {HOST}:{KAFKA_PORT}")


# --------------------------------------------------------------------------- PostgreSQL


def pg_bindir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise StackError("PostgreSQL server not found: install it (apt-get install postgresql)")


def as_pg_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents] if p != Path("/"))


def pg_home() -> Path:
    """PostgreSQL's directory: ``.stack/postgres``, or, when we are root and the checkout
    is not traversable by the postgres user (a 0700 temporary folder, say), a folder of
    its own under the system's temporary directory, named after this stack."""
    home = STACK / "postgres"
    if os.geteuid() != 0 or home.exists() or _traversable_by_others(STACK.parent):
        return home
    digest = hashlib.sha256(str(STACK.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"abflow-postgres-{digest}"


def pg_dirs() -> tuple[Path, Path]:
    pgdir = pg_home()
    return pgdir / "data", pgdir / "run"


def pg_running() -> bool:
    data, _ = pg_dirs()
    pidfile = data / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        return False
    return pid_alive(pid)


def psql(sql: str, db: str = "postgres") -> str:
    _, run = pg_dirs()
    bindir = pg_bindir()
    res = subprocess.run(
        as_pg_user(
            [
                str(bindir / "psql"),
                "-h",
                str(run),
                "-p",
                str(PG_PORT),
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise StackError(f"psql failed: {res.stderr.strip()}")
    return res.stdout.strip()


def start_postgres() -> None:
    data, run = pg_dirs()
    if pg_running() and port_open(PG_PORT):
        log(f"postgres already running on {HOST}:{PG_PORT}")
        return
    require_port_free(PG_PORT, "PostgreSQL", "ABFLOW_PG_PORT")
    bindir = pg_bindir()
    pgdir = data.parent
    pgdir.mkdir(parents=True, exist_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # the server refuses to run as root: its directories belong to the postgres user
        shutil.chown(pgdir, "postgres", "postgres")
        shutil.chown(run, "postgres", "postgres")
        if not _traversable_by_others(pgdir.parent):
            raise StackError(
                f"{pgdir.parent} is not traversable by the postgres user (chmod o+x it)"
            )
    if not (data / "PG_VERSION").exists():
        if data.exists():
            shutil.rmtree(data)
        res = subprocess.run(
            as_pg_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise StackError("initdb failed: " + res.stderr.strip()[-300:])
        log(f"initialised PostgreSQL data directory {data}")
    logfile = pgdir / "postgres.log"
    LOGS.mkdir(parents=True, exist_ok=True)
    logfile.touch()
    if os.geteuid() == 0:
        shutil.chown(logfile, "postgres", "postgres")
    opts = (
        f"-p {PG_PORT} -k {run} -c listen_addresses={HOST} -c max_connections=200 "
        "-c shared_buffers=256MB -c fsync=on -c synchronous_commit=on"
    )
    res = subprocess.run(
        as_pg_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(logfile),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise StackError(f"PostgreSQL did not start (see {logfile}): {res.stdout.strip()[-200:]}")
    exists = psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{PG_USER}'")
    if exists != "1":
        psql(f"CREATE ROLE {PG_USER} LOGIN SUPERUSER PASSWORD '{PG_PASSWORD}'")
    if psql(f"SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'") != "1":
        psql(f"CREATE DATABASE {PG_DB} OWNER {PG_USER}")
    log(f"postgres ready on {HOST}:{PG_PORT}")


def _has_c_utf8() -> bool:
    res = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
    return any(line.lower() in ("c.utf8", "c.utf-8") for line in res.stdout.splitlines())


def stop_postgres() -> None:
    data, _ = pg_dirs()
    if not pg_running():
        return
    log("stopping postgres")
    subprocess.run(
        as_pg_user(
            [str(pg_bindir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"]
        ),
        capture_output=True,
        text=True,
        check=False,
    )


# --------------------------------------------------------------------------- services


@dataclass(frozen=True)
class Service:
    """An HTTP service of ours, started with the project's virtualenv."""

    name: str
    module: str  # package that must exist for the service to be started
    argv: list[str]
    port: int
    env_var: str
    health_path: str = "/health"
    extra_env: dict[str, str] = field(default_factory=dict)

    def exists(self) -> bool:
        return (ROOT / self.module.replace(".", "/") / "main.py").exists()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def _uvicorn(app: str, port: int) -> list[str]:
    return [
        str(VENV_PY),
        "-m",
        "uvicorn",
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def _port(name: str, default: int) -> int:
    return int(os.environ.get(f"ABFLOW_{name.upper()}_PORT", str(default)))


SERVICES: list[Service] = [
    Service(
        "assignment",
        "services.assignment",
        _uvicorn("services.assignment.main:app", _port("assignment", 18001)),
        _port("assignment", 18001),
        "ASSIGNMENT_URL",
        health_path="/health/ready",
    ),
    Service(
        "analysis",
        "services.analysis",
        _uvicorn("services.analysis.main:app", _port("analysis", 18002)),
        _port("analysis", 18002),
        "ANALYSIS_URL",
    ),
    Service(
        "aggregator",
        "services.aggregator",
        [str(VENV_PY), "-m", "services.aggregator.main"],
        _port("aggregator", 18003),
        "AGGREGATOR_URL",
        extra_env={"AGGREGATOR_WEB_PORT": str(_port("aggregator", 18003))},
        health_path="/health/ready",
    ),
    Service(
        "console",
        "services.console",
        _uvicorn("services.console.main:app", _port("console", 18004)),
        _port("console", 18004),
        "CONSOLE_URL",
        # the pages' API calls go through the console to the gateway, with the login's key
        extra_env={"CONSOLE_UPSTREAM_URL": f"http://{HOST}:{_port('gateway', 18080)}"},
    ),
    Service(
        "gateway",
        "deploy.gateway",
        [str(ROOT / "deploy" / "gateway" / "run.sh")],
        _port("gateway", 18080),
        "GATEWAY_URL",
    ),
]


def kafka_version() -> str:
    jars = list(KAFKA_LIBS.glob("kafka_2.13-*.jar")) if KAFKA_LIBS.is_dir() else []
    return jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "unknown"


def infra_env() -> dict[str, str]:
    return {
        "ABFLOW_KAFKA_VERSION": kafka_version(),
        "KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{KAFKA_PORT}",
        "DATABASE_URL": f"postgresql://{PG_USER}:{PG_PASSWORD}@{HOST}:{PG_PORT}/{PG_DB}",
    }


LOCAL_KEYS = (
    ("admin", "ADMIN_API_KEY", "local-admin"),
    ("read", "READ_API_KEY", "local-read"),
    ("client", "CLIENT_API_KEY", "local-client"),
)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600, also when it existed before)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through os.open


def local_keys() -> dict[str, str]:
    """The stack's API keys by scope, generated on first use into .stack/keys.json
    (the same format as `python -m shared.auth create`: abf_ + 256 random bits)."""
    path = STACK / "keys.json"
    keys: dict[str, str] = {}
    if path.exists():
        try:
            keys = {k: str(v) for k, v in json.loads(path.read_text()).items()}
        except (ValueError, AttributeError) as exc:
            raise StackError(
                f"{path} is not valid JSON ({exc}); delete it to get new keys"
            ) from None
    if all(keys.get(scope) for scope, _, _ in LOCAL_KEYS):
        return keys
    for scope, _, _ in LOCAL_KEYS:
        keys.setdefault(scope, "abf_" + secrets.token_urlsafe(32))
    write_private(path, json.dumps(keys, indent=2))
    log(f"API keys generated into {path}")
    return keys


def console_session_secret() -> str:
    """The console's CONSOLE_SESSION_SECRET (seals its login cookie), generated on first
    use into .stack/console_secret (mode 0600) and kept, so that logins survive restarts."""
    path = STACK / "console_secret"
    if path.exists() and (secret := path.read_text().strip()):
        return secret
    secret = secrets.token_urlsafe(32)
    write_private(path, secret + "\n")
    return secret


def api_keys_setting() -> str:
    """The services' API_KEYS: principal:scope:sha256(key) per local key."""
    keys = local_keys()
    return ",".join(
        f"{principal}:{scope}:{hashlib.sha256(keys[scope].encode()).hexdigest()}"
        for scope, _, principal in LOCAL_KEYS
    )


def keys_env() -> dict[str, str]:
    keys = local_keys()
    return {var: keys[scope] for scope, var, _ in LOCAL_KEYS}


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_service(svc: Service) -> None:
    if read_pid(svc.name) and http_ok(svc.url + svc.health_path):
        log(f"{svc.name} already running at {svc.url}")
        return
    stop_pid(svc.name)
    require_port_free(svc.port, svc.name, f"ABFLOW_{svc.name.upper()}_PORT")
    if not VENV_PY.exists():
        raise StackError(f"{VENV_PY} missing: run `make install` first")
    env = {**infra_env(), **svc.extra_env, "API_KEYS": api_keys_setting(), "PYTHONPATH": str(ROOT)}
    if svc.name == "console":
        env["CONSOLE_SESSION_SECRET"] = console_session_secret()
    spawn(svc.name, svc.argv, env=env)
    logfile = LOGS / f"{svc.name}.log"

    def ready() -> bool:
        if read_pid(svc.name) is None:
            raise StackError(f"{svc.name} exited during start-up (see {logfile})")
        return http_ok(svc.url + svc.health_path)

    wait_until(ready, 60, svc.name, logfile)
    log(f"{svc.name} ready at {svc.url}")


def apply_migrations() -> None:
    if not VENV_PY.exists():
        raise StackError(f"{VENV_PY} missing: run `make install` first")
    res = subprocess.run(
        [str(VENV_PY), "-m", "shared.db.migrate", "apply"],
        env={**os.environ, **infra_env(), "PYTHONPATH": str(ROOT)},
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=False,
    )
    out = (res.stdout + res.stderr).strip()
    if res.returncode != 0:
        raise StackError(out.splitlines()[-1] if out else "migrations failed")
    for line in out.splitlines():
        log(line)
    res = subprocess.run(
        [str(VENV_PY), "-m", "shared.kafka"],
        env={**os.environ, **infra_env(), "PYTHONPATH": str(ROOT)},
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=False,
    )
    out = (res.stdout + res.stderr).strip()
    if res.returncode != 0:
        raise StackError(out.splitlines()[-1] if out else "topic creation failed")
    log(out.splitlines()[-1] if out else "topics ready")


def write_env(services: list[Service]) -> None:
    env = infra_env()
    for svc in services:
        env[svc.env_var] = svc.url
    keys = keys_env()
    # it holds the keys
    write_private(STACK / "env", "".join(f"export {k}={v}\n" for k, v in {**env, **keys}.items()))
    log(f"endpoints (also in {STACK / 'env'}):")
    for k, v in env.items():
        print(f"  {k}={v}", flush=True)
    log(f"API keys ({', '.join(keys)}): in {STACK / 'env'} and {STACK / 'keys.json'}")


# --------------------------------------------------------------------------- commands


def check_prerequisites() -> None:
    """Fail with one line before anything starts when a tool is missing."""
    if not shutil.which("java"):
        raise StackError(
            "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
        )
    has_jars = KAFKA_LIBS.is_dir() and any(KAFKA_LIBS.glob("kafka_2.13-*.jar"))
    if not has_jars and not shutil.which("mvn"):
        raise StackError(
            "mvn not found: install Maven (apt-get install maven) to resolve the Kafka jars"
        )
    pg_bindir()
    if os.geteuid() == 0 and not shutil.which("runuser"):
        raise StackError("runuser not found: it is needed to run PostgreSQL as the postgres user")


def _start_infra() -> list[str]:
    """Start PostgreSQL and Kafka where not running; return the names started."""
    check_prerequisites()
    started: list[str] = []
    if not (pg_running() and port_open(PG_PORT)):
        started.append("postgres")
    start_postgres()
    if not (read_pid("kafka") and port_open(KAFKA_PORT)):
        started.append("kafka")
    start_kafka()
    return started


def _record(path: str | None, names: list[str]) -> None:
    if path:
        Path(path).write_text("\n".join(names) + "\n")


def cmd_infra_up(args: argparse.Namespace) -> None:
    started = _start_infra()
    _record(args.started_file, started)
    apply_migrations()
    write_env([])


def cmd_up(args: argparse.Namespace) -> None:
    started = _start_infra()
    _record(args.started_file, started)
    apply_migrations()
    services = [s for s in SERVICES if s.exists() and (not args.only or s.name in args.only)]
    for svc in services:
        if not (read_pid(svc.name) and http_ok(svc.url + svc.health_path)):
            started.append(svc.name)
            _record(args.started_file, started)
        start_service(svc)
    write_env(services)


def cmd_stop_listed(args: argparse.Namespace) -> None:
    """Stop the components named in a file written by `up/infra-up --started-file`."""
    path = Path(args.started_file)
    names = path.read_text().split() if path.exists() else []
    for svc in reversed(SERVICES):
        if svc.name in names:
            stop_pid(svc.name)
    if "kafka" in names:
        stop_pid("kafka", timeout=40)
    if "postgres" in names:
        stop_postgres()
    path.unlink(missing_ok=True)


def cmd_down(_: argparse.Namespace) -> None:
    for svc in reversed(SERVICES):
        stop_pid(svc.name)
    stop_pid("kafka", timeout=40)
    stop_postgres()
    (STACK / "env").unlink(missing_ok=True)
    log("stopped")


def cmd_clean(args: argparse.Namespace) -> None:
    """``down``, then remove the stack's state: ``.stack`` and PostgreSQL's folder when it
    lives under the temporary directory (the local API keys go with ``.stack``)."""
    cmd_down(args)
    pgdir = pg_home()
    if not pgdir.is_relative_to(STACK):
        shutil.rmtree(pgdir, ignore_errors=True)
    shutil.rmtree(STACK, ignore_errors=True)
    log(f"removed {STACK}" + ("" if pgdir.is_relative_to(STACK) else f" and {pgdir}"))


def cmd_status(_: argparse.Namespace) -> None:
    rows = [
        ("postgres", pg_running(), PG_PORT),
        ("kafka", read_pid("kafka") is not None, KAFKA_PORT),
    ]
    rows += [(s.name, read_pid(s.name) is not None, s.port) for s in SERVICES if s.exists()]
    for name, alive, port in rows:
        print(f"{name:12s} {'running' if alive else 'stopped':8s} port {port}")


def cmd_env(_: argparse.Namespace) -> None:
    for k, v in infra_env().items():
        print(f"export {k}={v}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start Kafka, PostgreSQL, migrations and every service")
    up.add_argument("--only", nargs="*", default=None, help="start only these services")
    up.add_argument(
        "--started-file", default=None, help="write the names of what this call started"
    )
    up.set_defaults(func=cmd_up)
    infra = sub.add_parser("infra-up", help="start Kafka and PostgreSQL and apply migrations")
    infra.add_argument(
        "--started-file", default=None, help="write the names of what this call started"
    )
    infra.set_defaults(func=cmd_infra_up)
    listed = sub.add_parser("stop-listed", help="stop what `infra-up --started-file F` started")
    listed.add_argument("started_file")
    listed.set_defaults(func=cmd_stop_listed)
    sub.add_parser("down", help="stop everything `up` started").set_defaults(func=cmd_down)
    sub.add_parser("clean", help="down, then remove the stack's state").set_defaults(func=cmd_clean)
    sub.add_parser("status", help="what is running").set_defaults(func=cmd_status)
    sub.add_parser("env", help="print the infrastructure variables").set_defaults(func=cmd_env)
    args = parser.parse_args()
    try:
        args.func(args)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
