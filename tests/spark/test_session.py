"""Spark sessions: where the master comes from, and clear errors when Spark cannot start."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from headrace.errors import ConfigError
from headrace.spark import session as S


def test_master_from_argument_then_environment_then_local() -> None:
    assert S.master_from("spark://10.0.0.5:7077", {S.MASTER_ENV: "local[1]"}) == "spark://10.0.0.5:7077"
    assert S.master_from(None, {S.MASTER_ENV: "local[3]"}) == "local[3]"
    assert S.master_from(None, {}) == "local[*]"
    for ok in ("yarn", "k8s://https://10.0.0.1:6443", "local", "local[4,2]"):
        assert S.master_from(ok, {}) == ok


def test_a_master_that_is_no_url_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'localhost' is not a master URL.*HEADRACE_SPARK_MASTER"):
        S.master_from("localhost", {})


def test_pyspark_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)     # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'headrace\[spark\]'"):
        S.spark_session("local[1]")


def test_java_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a Java runtime"):
        S.java_executable({"PATH": str(tmp_path)})
    with pytest.raises(ConfigError, match="JAVA_HOME is .* not an executable java"):
        S.java_executable({"JAVA_HOME": str(tmp_path / "nowhere"), "PATH": ""})


def test_java_too_old_is_a_clear_error(tmp_path: Path) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(ConfigError, match=r"PySpark 4.0.0 needs Java 17 or newer, but .* is Java 11"):
        S.check_java("4.0.0", {"JAVA_HOME": str(tmp_path / "jdk")})
    assert S.check_java("3.5.1", {"JAVA_HOME": str(tmp_path / "jdk")}).endswith("java")


def test_a_lake_job_without_java_says_so_in_one_line(tmp_path: Path) -> None:
    """In a fresh process whose JAVA_HOME points nowhere, before any JVM is started."""
    code = ("from headrace.spark.session import spark_session\n"
            "try:\n    spark_session('local[1]')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-jdk")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("ConfigError JAVA_HOME is") and out.stdout.count("\n") == 1, out


def test_package_downloads_are_refused() -> None:
    with pytest.raises(ConfigError, match="download packages at run time"):
        S.spark_session("local[1]", conf={"spark.jars.packages": "org.apache.hadoop:hadoop-aws:3.3.4"})


def test_the_running_session_is_shared_and_its_master_respected(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert S.spark_session() is spark and S.spark_session("local[2]") is spark
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    with pytest.raises(ConfigError, match=r"already running on local\[2\].*before running on local\[1\]"):
        S.spark_session("local[1]")
    monkeypatch.setenv(S.MASTER_ENV, "local[1]")       # the environment is read too
    with pytest.raises(ConfigError, match=r"before running on local\[1\]"):
        S.spark_session()


def test_headraces_session_registers_the_spark_quality_backend(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user who starts Spark through headrace checks Spark DataFrames with no other import."""
    import pyarrow as pa

    from headrace.errors import QualityError
    from headrace.quality import backends, open_source
    from headrace.spark import quality

    monkeypatch.setattr(backends, "_BACKENDS", [b for b in backends._BACKENDS if b.name != "spark"])
    monkeypatch.setattr(quality, "_registered", False)
    df = spark.createDataFrame(pa.table({"x": [1]}))
    with pytest.raises(QualityError, match="cannot run checks on pyspark"):
        open_source(df)
    S.spark_session()
    assert open_source(df).kind == "spark"
