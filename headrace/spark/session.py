"""Spark sessions for headrace: one per process, configured from the job or the environment.

    from headrace.spark.session import spark_session
    spark = spark_session()                    # HEADRACE_SPARK_MASTER, else local[*]
    spark = spark_session("spark://host:7077")  # a standalone cluster (or yarn, k8s://...)

headrace never makes Spark download anything at run time (no ``spark.jars.packages``):
what a job needs is pyspark itself (``pip install 'headrace[spark]'``) and a Java runtime
(17 or newer for Spark 4). Both are checked first, with a message saying what to install.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headrace.errors import ConfigError

log = logging.getLogger("headrace.spark")

MASTER_ENV = "HEADRACE_SPARK_MASTER"
DEFAULT_MASTER = "local[*]"
INSTALL_HINT = "install it with: pip install 'headrace[spark]'"

# What every headrace session needs, whatever the master: timestamps in UTC (so a value read
# is the value written, on every machine), Arrow between the JVM and Python, ANSI SQL so a
# cast that does not fit is an error and never a silent NULL.
BASE_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.showConsoleProgress": "false",   # headrace shows its own progress
}
_LOCK = threading.Lock()


def master_from(master: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The master a job runs on: the one given, else ``HEADRACE_SPARK_MASTER``, else ``local[*]``."""
    env = os.environ if env is None else env
    chosen = (master or env.get(MASTER_ENV) or DEFAULT_MASTER).strip()
    if not re.match(r"^(local(\[(\*|\d+)(,\s*\d+)?\])?|local-cluster\[.+\]|[a-z][a-z0-9+.-]*://.+|yarn)$", chosen):
        raise ConfigError(f"Spark master {chosen!r} is not a master URL; give local[*], local[N], "
                          f"spark://host:7077, yarn or k8s://... (argument spark_master or {MASTER_ENV})")
    return chosen


def require_pyspark() -> Any:
    """The ``pyspark`` module, or a ConfigError naming the extra to install."""
    try:
        import pyspark
    except ImportError:
        raise ConfigError("the Spark engine needs PySpark, which is not installed; " + INSTALL_HINT) from None
    return pyspark


def java_executable(env: Mapping[str, str] | None = None) -> str:
    """The ``java`` Spark will start: ``JAVA_HOME/bin/java``, else the one on PATH."""
    env = os.environ if env is None else env
    home = env.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise ConfigError(f"JAVA_HOME is {home!r} but {candidate} is not an executable java; point "
                          "JAVA_HOME at a Java 17+ runtime (e.g. /usr/lib/jvm/java-17-openjdk-amd64) or unset it")
    found = shutil.which("java", path=env.get("PATH"))
    if not found:
        raise ConfigError("the Spark engine needs a Java runtime (17 or newer) and none was found: install one "
                          "(e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
    return found


def java_major(java: str) -> int:
    """The major version of a ``java`` executable (8, 11, 17, 21...)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"could not run {java} -version ({exc}); set JAVA_HOME to a Java 17+ runtime") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        raise ConfigError(f"{java} -version did not say its version; set JAVA_HOME to a Java 17+ runtime")
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major     # "1.8.0" is Java 8


def check_java(pyspark_version: str, env: Mapping[str, str] | None = None) -> str:
    """The java to use, refused with a clear message when it is missing or too old for this PySpark."""
    java = java_executable(env)
    need = 17 if int(pyspark_version.split(".")[0]) >= 4 else 8
    have = java_major(java)
    if have < need:
        raise ConfigError(f"PySpark {pyspark_version} needs Java {need} or newer, but {java} is Java {have}; "
                          "install a newer Java and point JAVA_HOME at it")
    return java


def spark_session(master: str | None = None, *, app_name: str = "headrace",
                  conf: Mapping[str, str] | None = None) -> Any:
    """The process's SparkSession on ``master`` (see :func:`master_from`), created on first use.

    ``conf`` adds Spark settings (e.g. ``{"spark.executor.memory": "8g"}``). A running
    session on another master is an error, not silently reused: stop it first.
    """
    pyspark = require_pyspark()
    from headrace.spark import quality

    quality.register()      # Spark DataFrames become checkable by suites
    chosen = master_from(master)
    settings = {**BASE_CONF, **(conf or {})}
    if "spark.jars.packages" in settings:
        raise ConfigError("spark.jars.packages would download packages at run time; put the jars on the "
                          "cluster (spark.jars with local paths) instead")
    with _LOCK:
        active = _active_session()
        if active is not None:
            return _reuse(active, chosen, master is not None or MASTER_ENV in os.environ)
        check_java(pyspark.__version__)
        # Python workers run this interpreter (the one headrace is installed in), not `python3`.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.master(chosen).appName(app_name)
        for key, value in settings.items():
            builder = builder.config(key, value)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:   # py4j / JVM start-up failures carry pages of Java output
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"could not start Spark on {chosen}: {first}") from exc
        spark.sparkContext.setLogLevel("ERROR")
        log.info("Spark %s session on %s", spark.version, chosen)
        return spark


def _active_session() -> Any:
    """The session of this process, from any thread (getActiveSession only sees its own thread's)."""
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession() or getattr(SparkSession, "_instantiatedSession", None)
    if session is None or getattr(session.sparkContext, "_jsc", None) is None:
        return None     # stopped
    return session


def _reuse(active: Any, chosen: str, explicit: bool) -> Any:
    # A session the user started keeps its own settings: nothing headrace runs on it depends on
    # the session time zone (timestamps travel as UTC instants through Arrow).
    running = active.sparkContext.master
    if explicit and running != chosen:
        raise ConfigError(f"a Spark session is already running on {running}; stop it (spark.stop()) "
                          f"before running on {chosen}")
    return active


def stop_session() -> None:
    """Stop the process's session, if any (tests, and users switching masters)."""
    require_pyspark()
    with _LOCK:
        active = _active_session()
        if active is not None:
            active.stop()
