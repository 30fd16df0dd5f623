"""Dataset identity by the OpenLineage naming rules, never holding a secret."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.lineage import DatasetRef, parse_dataset
from headrace.lineage.naming import duckdb_source, file_dataset, sql_source


def test_postgres_is_host_port_and_database_schema_table() -> None:
    src = sql_source("postgresql+psycopg://etl:pw@db.internal/sales")
    assert src.namespace == "postgres://db.internal:5432"
    assert src.table("orders") == DatasetRef("postgres://db.internal:5432", "sales.public.orders")
    assert src.table("orders", "staging") == DatasetRef("postgres://db.internal:5432", "sales.staging.orders")
    # search_path in the URL options is where unqualified tables live
    assert sql_source("postgresql://h:6543/dwh?options=-csearch_path%3Dmart").table("t").name == "dwh.mart.t"
    assert sql_source("postgresql://h:6543/dwh").namespace == "postgres://h:6543"


def test_embedded_databases_are_named_by_their_file(tmp_path) -> None:
    duck = sql_source(f"duckdb:///{tmp_path}/wh.duckdb")
    assert duck.namespace == f"duckdb://{tmp_path}/wh.duckdb"
    assert duck.table("fact").name == "wh.main.fact"
    assert duckdb_source(":memory:").namespace == "duckdb://memory"
    lite = sql_source(f"sqlite:///{tmp_path}/app.db")
    assert lite.namespace == f"sqlite://{tmp_path}/app.db" and lite.table("users").name == "users"
    assert sql_source("mysql+pymysql://u:p@my.host/shop").table("items") == DatasetRef("mysql://my.host:3306",
                                                                                      "shop.items")


def test_files_and_prefixes(tmp_path) -> None:
    assert file_dataset(f"{tmp_path}/in.csv") == DatasetRef("file", f"{tmp_path}/in.csv")
    assert file_dataset("s3://raw/orders/2024-*.ndjson") == DatasetRef("s3://raw", "orders")
    assert file_dataset("s3a://raw/orders/part=1/x.parquet") == DatasetRef("s3://raw", "orders/part=1/x.parquet")
    assert file_dataset(f"{tmp_path}/logs/*/*.json") == DatasetRef("file", f"{tmp_path}/logs")


def test_declared_names_parse() -> None:
    assert parse_dataset("postgres://db:5432/dwh.public.orders") == DatasetRef("postgres://db:5432",
                                                                                "dwh.public.orders")
    assert parse_dataset("postgresql://u:secret@db:5432/dwh.public.orders").namespace == "postgres://db:5432"
    assert parse_dataset("s3://bucket/a/b") == DatasetRef("s3://bucket", "a/b")
    assert parse_dataset("duckdb:///w/x.duckdb/x.main.t") == DatasetRef("duckdb:///w/x.duckdb", "x.main.t")
    with pytest.raises(ValueError, match="a dataset is a DatasetRef"):
        parse_dataset(42)


_WORD = st.text(string.ascii_letters + string.digits + "!$&()*+,;=-._~", min_size=8, max_size=24)


@settings(max_examples=150, deadline=None)
@given(password=_WORD, user=st.text(string.ascii_lowercase, min_size=1, max_size=8),
       scheme=st.sampled_from(["postgresql", "postgresql+psycopg", "mysql+pymysql", "postgres"]))
def test_a_password_in_a_url_never_reaches_a_dataset_identity(password: str, user: str, scheme: str) -> None:
    from urllib.parse import quote

    url = f"{scheme}://{user}:{quote(password, safe='')}@db.example:5433/sales"
    src = sql_source(url)
    ref = src.table("orders", "public")
    declared = parse_dataset(f"{scheme}://{user}:{quote(password, safe='')}@db.example:5433/sales.public.orders")
    for text in (src.namespace, ref.namespace, ref.name, str(ref), declared.namespace, declared.name):
        assert password not in text and quote(password, safe="") not in text
