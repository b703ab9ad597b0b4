"""Starting Spark: a SparkSession on a master, the one spark-submit set up, or a Spark Connect
session; for anything started locally, settings that keep it on 127.0.0.1 and its Python workers on
this interpreter and this package."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOOPBACK = "127.0.0.1"
PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the folder that holds onnxship/


def local_conf(master: str) -> dict[str, str]:
    """Spark settings for a session this process starts. For a local master: bind to 127.0.0.1
    (the host name may resolve to another interface) and keep the UI and console bar off."""
    conf = {"spark.ui.showConsoleProgress": "false", "spark.python.worker.reuse": "true"}
    if master.startswith("local"):
        conf |= {
            "spark.driver.bindAddress": LOOPBACK,
            "spark.driver.host": LOOPBACK,
            "spark.ui.enabled": "false",
        }
    return conf


def start_session(
    master: str | None = None, remote: str | None = None, conf: dict[str, str] | None = None
) -> SparkSession:
    """A SparkSession: Spark Connect if ``remote`` (``sc://host:port``, or ``local[N]`` for a Connect
    server this process starts), the one spark-submit set up if this process was launched by it, else
    a new one on ``master`` (default ``local[*]``). Whatever this process starts locally binds to
    127.0.0.1 and runs its Python workers on this interpreter."""
    from pyspark.sql import SparkSession

    launched = "PYSPARK_GATEWAY_PORT" in os.environ and master is None and not remote  # by spark-submit
    master = master or "local[*]"
    local = (remote or master).startswith("local") and not launched
    settings = local_conf("local" if local else "") if (local or not remote) else {}
    if local:
        # Read by the JVM this call launches: executors and block manager bind to loopback too.
        os.environ["SPARK_LOCAL_IP"] = LOOPBACK
        # Workers run this interpreter (the default, `python3` on PATH, may lack the packages).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        add_to_pythonpath(PACKAGE_ROOT)
        if remote:
            settings["spark.connect.grpc.binding.address"] = LOOPBACK
    if remote:
        builder = SparkSession.builder.remote(remote)
    else:
        builder = SparkSession.builder.appName("onnxship-score")
        if not launched:
            builder = builder.master(master)
    for key, value in {**settings, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def add_to_pythonpath(folder: Path) -> None:
    """Let the workers, started by the JVM from its environment, import this package."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(folder) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), *parts])
