"""Big data: the Dask task runner (and, with the lake job, Spark sessions and ``LakeJob``).

Imports without Dask: ``DaskTaskRunner()`` names the ``headrace[dask]`` extra when it is missing.
"""

from __future__ import annotations

from headrace.spark.dask_runner import DaskTaskRunner

__all__ = ["DaskTaskRunner"]
