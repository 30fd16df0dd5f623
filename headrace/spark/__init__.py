"""Big data: the lake-to-warehouse job (``LakeJob``) on DuckDB and Apache Spark.

Imports without PySpark: only ``engine="spark"`` needs the ``headrace[spark]`` extra.
"""

from __future__ import annotations

from headrace.spark.lake import QUARANTINE_SCHEMA, LakeJob, LakeJobError, LakeResult

__all__ = ["LakeJob", "LakeResult", "LakeJobError", "QUARANTINE_SCHEMA"]
