"""A standalone Spark cluster and a Spark Connect server on 127.0.0.1, from the pyspark distribution.

The master, each worker and the Connect server are separate JVMs started with the distribution's
own launchers (``bin/spark-class``, ``bin/spark-submit``; ``SPARK_HOME`` is pyspark's folder);
each is stopped by its PID. Used by the cluster tests (``test_spark_cluster.py``) and the cluster
benchmark (``benchmarks/bench_spark_cluster.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DAEMON_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
"""The master and workers only schedule: the C1 compiler alone starts them sooner."""


def spark_home() -> Path:
    """The Spark distribution inside the pyspark package (bin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def connect_jar() -> Path | None:
    """The Spark Connect server jar of the distribution (pyspark >= 4 ships it; 3.5 does not)."""
    found = sorted((spark_home() / "jars").glob("spark-connect_*.jar"))
    return found[0] if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(conf_dir: Path) -> dict[str, str]:
    """Environment of every JVM started here: loopback only, this venv's Python for Python workers."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARK_REMOTE", "EXPKIT_SPARK_MASTER", "PYSPARK_GATEWAY_PORT", "SPARK_CONF_DIR")}
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_LOCAL_HOSTNAME="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
    )
    return env


def write_defaults(conf_dir: Path, settings: dict[str, str]) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "spark-defaults.conf"
    path.write_text("".join(f"{k} {v}\n" for k, v in settings.items()), encoding="utf-8")
    return path


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - the master's UI on 127.0.0.1
        return json.load(resp)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (a worker then stops its executors), SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass
class Cluster:
    """A standalone master and its workers (``worker-1``, ``worker-2``, ...), each its own JVM."""

    root: Path
    env: dict[str, str]
    master_port: int
    ui_port: int
    worker_cores: int
    worker_memory: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def _launch(self, name: str, args: list[str]) -> None:
        log = (self.root / "logs" / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()

    def start_master(self) -> None:
        self._launch("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                "--port", str(self.master_port), "--webui-port", str(self.ui_port)])

    def start_worker(self, name: str) -> None:
        work = self.root / "work" / name
        work.mkdir(parents=True, exist_ok=True)
        self._launch(name, ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                            "--cores", str(self.worker_cores), "--memory", self.worker_memory,
                            "--webui-port", str(free_port()), "--work-dir", str(work), self.url])

    def state(self) -> dict[str, Any]:
        """The master's JSON status page (workers, applications)."""
        return dict(_get_json(f"http://127.0.0.1:{self.ui_port}/json"))

    def alive_workers(self) -> int:
        try:
            return sum(w.get("state") == "ALIVE" for w in self.state().get("workers", []))
        except OSError:
            return 0

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.alive_workers() != count:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"cluster not up ({self.alive_workers()} of {count} workers alive, exited: {dead}); "
                                   f"logs in {self.root / 'logs'}:\n{self.logs()}")
            time.sleep(0.5)

    def running_apps(self) -> list[dict[str, Any]]:
        try:
            return list(self.state().get("activeapps", []))
        except OSError:
            return []

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's JVM (its executors notice and exit)."""
        proc = self.procs[name]
        proc.kill()
        proc.wait(30)

    def logs(self, tail: int = 20) -> str:
        out = []
        for path in sorted((self.root / "logs").glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def stop(self) -> None:
        """Workers first (each stops its executors), then the master, each by its PID."""
        for name in sorted(self.procs, key=lambda n: n == "master"):
            _stop(self.procs[name])


def start_cluster(root: Path, workers: int = 2, cores: int = 1, memory: str = "1g",
                  daemon_memory: str = "512m", wait: bool = True) -> Cluster:
    """Start a master and ``workers`` workers on 127.0.0.1 and (with ``wait``) wait until all have
    registered; otherwise call :meth:`Cluster.wait_for_workers` before use."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    env = base_env(root / "conf")
    write_defaults(root / "conf", {})
    env.update(SPARK_DAEMON_MEMORY=daemon_memory, SPARK_DAEMON_JAVA_OPTS=DAEMON_JAVA_OPTS,
               SPARK_LOG_DIR=str(root / "logs"), SPARK_WORKER_DIR=str(root / "work"))
    cluster = Cluster(root, env, free_port(), free_port(), cores, memory)
    try:
        cluster.start_master()
        for i in range(1, workers + 1):
            cluster.start_worker(f"worker-{i}")
        if wait:
            cluster.wait_for_workers(workers)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def client_settings(cluster: Cluster, executor_memory: str = "1g", java_opts: str = "-XX:+UseSerialGC",
                    shuffle_partitions: int = 4) -> dict[str, str]:
    """``spark-defaults.conf`` of a driver (an ``expkit`` process) that uses ``cluster``."""
    return {
        "spark.master": cluster.url,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": "1g",
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "spark.executor.memory": executor_memory,
        "spark.executor.cores": str(cluster.worker_cores),
        "spark.executor.extraJavaOptions": java_opts,
        "spark.pyspark.python": sys.executable,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


@dataclass
class ConnectServer:
    """A Spark Connect server (its own JVM, a local-mode driver) listening on 127.0.0.1."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"the Spark Connect server did not start (exit {self.proc.poll()}):\n{tail}")
            time.sleep(0.5)

    def stop(self) -> None:
        _stop(self.proc)


def start_connect_server(root: Path, jar: Path, master: str = "local[2]") -> ConnectServer:
    """``spark-submit --class ...SparkConnectServer`` with the distribution's connect jar (not waited for)."""
    root.mkdir(parents=True, exist_ok=True)
    env = base_env(root / "conf")
    write_defaults(root / "conf", {})
    port = free_port()
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    }
    args = [str(spark_home() / "bin" / "spark-submit"), "--master", master, "--driver-memory", "1g",
            "--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "--name", "expkit-connect"]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    log = root / "connect.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen([*args, str(jar)], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return ConnectServer(proc, port, log)
