"""One Spark session for the whole test run: local[2], few shuffle partitions, no web UI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

TEST_CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
             "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
             "spark.driver.memory": "1g"}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from headrace.spark.session import spark_session, stop_session

    session = spark_session("local[2]", app_name="headrace-tests", conf=TEST_CONF)
    yield session
    stop_session()
