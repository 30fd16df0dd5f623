"""One Spark session for the whole test run (local[2], few shuffle partitions, no web UI), and one
Dask LocalCluster per test module (2 worker processes), on loopback only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

TEST_CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
             "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
             "spark.driver.memory": "1g"}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    import headrace.spark  # noqa: F401  (what a user imports; registers the Spark quality backend)
    from headrace.spark.session import spark_session, stop_session

    session = spark_session("local[2]", app_name="headrace-tests", conf=TEST_CONF)
    yield session
    stop_session()


@pytest.fixture(scope="module")
def dask_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running scheduler, as a team's cluster would be: the runner only connects to it.

    Dask's own default of re-running a task whose worker died is kept here (allowed-failures 3).
    The workers get a HEADRACE_HOME of their own: nothing a body does may depend on it.
    """
    from distributed import LocalCluster

    home = tmp_path_factory.mktemp("dask_worker_home")
    cluster = LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                           dashboard_address=None, env={"HEADRACE_HOME": str(home)})
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()
