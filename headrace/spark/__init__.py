"""Big data: the lake-to-warehouse job (``LakeJob``) on DuckDB and Apache Spark, and the Dask task runner.

Imports without PySpark or Dask: only ``engine="spark"`` needs the ``headrace[spark]`` extra, and
``DaskTaskRunner()`` names the ``headrace[dask]`` extra when it is missing.
"""

from __future__ import annotations

from headrace.spark.dask_runner import DaskTaskRunner
from headrace.spark.lake import QUARANTINE_SCHEMA, LakeJob, LakeJobError, LakeResult

__all__ = ["DaskTaskRunner", "LakeJob", "LakeResult", "LakeJobError", "QUARANTINE_SCHEMA"]
