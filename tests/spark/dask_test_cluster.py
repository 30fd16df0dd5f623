"""One Dask LocalCluster per test module (2 worker processes), on loopback only.

Each Dask test module declares its fixture with it (a conftest here is the Spark tests'):

    @pytest.fixture(scope="module")
    def dask_address(tmp_path_factory):
        yield from shared_cluster(tmp_path_factory)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running scheduler, as a team's cluster would be: the runner only connects to it.

    Dask's own default of re-running a task whose worker died is kept here (allowed-failures 3).
    The workers get a HEADRACE_HOME of their own: nothing a body does may depend on it.
    """
    from distributed import LocalCluster

    home = tmp_path_factory.mktemp("dask_worker_home")
    cluster = LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                           dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                           env={"HEADRACE_HOME": str(home)})
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()
