"""Column lineage of SQL with sqlglot: joins, aggregations, renames, CTEs; bad SQL never fails."""

from __future__ import annotations

import logging

import pytest

from headrace.lineage.model import ColumnSource, DatasetRef
from headrace.lineage.naming import sql_source
from headrace.lineage.sql import analyze

PG = sql_source("postgresql://etl:pw@db:5432/sales")
ORDERS = DatasetRef("postgres://db:5432", "sales.public.orders")
CUSTOMERS = DatasetRef("postgres://db:5432", "sales.crm.customers")


def sources(found, column):
    return {(s.dataset.name.rsplit(".", 1)[-1], s.column, s.subtype) for s in found.columns[column]}


def test_a_join_maps_each_column_to_its_table() -> None:
    found = analyze("SELECT o.order_id, c.name, c.region FROM orders o JOIN crm.customers c ON c.id = o.customer_id "
                    "WHERE o.order_date >= :start", PG)
    assert found.tables == [ORDERS, CUSTOMERS]
    assert found.columns["order_id"] == [ColumnSource(ORDERS, "order_id", "DIRECT", "IDENTITY")]
    assert sources(found, "name") == {("customers", "name", "IDENTITY")}
    assert sources(found, "region") == {("customers", "region", "IDENTITY")}


def test_aggregations_and_expressions() -> None:
    found = analyze("SELECT c.region, SUM(o.amount * o.qty) AS revenue, COUNT(DISTINCT o.customer_id) AS buyers, "
                    "UPPER(c.region) AS loud FROM orders o JOIN crm.customers c ON c.id = o.customer_id "
                    "GROUP BY c.region", PG)
    assert sources(found, "region") == {("customers", "region", "IDENTITY")}
    assert sources(found, "revenue") == {("orders", "amount", "AGGREGATION"), ("orders", "qty", "AGGREGATION")}
    assert sources(found, "buyers") == {("orders", "customer_id", "AGGREGATION")}
    assert sources(found, "loud") == {("customers", "region", "TRANSFORMATION")}


def test_renames_and_ctes_are_followed_to_the_real_table() -> None:
    found = analyze("""
        WITH recent AS (SELECT order_id AS id, customer_id AS cust, amount FROM orders WHERE amount > 0),
             big AS (SELECT cust AS customer, SUM(amount) AS total FROM recent GROUP BY cust)
        SELECT customer AS who, total AS spent FROM big""", PG)
    assert found.tables == [ORDERS]  # the CTE names are not datasets
    assert sources(found, "who") == {("orders", "customer_id", "IDENTITY")}
    assert sources(found, "spent") == {("orders", "amount", "AGGREGATION")}


def test_select_star_over_one_table_uses_the_result_columns() -> None:
    duck = sql_source("duckdb:////data/src.duckdb")
    found = analyze("SELECT * FROM main.orders WHERE order_id < :n", duck, ["order_id", "amount"])
    ref = DatasetRef("duckdb:///data/src.duckdb", "src.main.orders")
    assert found.tables == [ref]
    assert found.columns == {"order_id": [ColumnSource(ref, "order_id")], "amount": [ColumnSource(ref, "amount")]}


def test_postgres_folds_unquoted_names_like_the_server() -> None:
    found = analyze('SELECT "Id" FROM Public.Orders JOIN "CamelCase" USING (x)', PG)
    assert [t.name for t in found.tables] == ["sales.public.orders", "sales.public.CamelCase"]


@pytest.mark.parametrize("sql", ["SELEC broken FROM (", "SELECT FROM WHERE ((", "DO $$ weird $$ garbage ;;"])
def test_sql_that_cannot_parse_gives_no_lineage_and_a_debug_line(sql: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="headrace.lineage"):
        found = analyze(sql, PG)
    assert found.columns == {} and not found.parsed
    assert any("cannot parse SQL" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_join_keys_filters_grouping_and_sorting_are_indirect_sources() -> None:
    found = analyze("""
        WITH ok AS (SELECT order_id, customer_id AS cust, amount FROM orders WHERE status = 'paid')
        SELECT c.region, SUM(ok.amount) AS revenue FROM ok JOIN crm.customers c ON c.id = ok.cust
        WHERE c.active GROUP BY c.region ORDER BY revenue""", PG)
    assert {(s.dataset.name.rsplit(".", 1)[-1], s.column, s.type, s.subtype) for s in found.indirect} == {
        ("orders", "status", "INDIRECT", "FILTER"), ("customers", "id", "INDIRECT", "JOIN"),
        ("orders", "customer_id", "INDIRECT", "JOIN"), ("customers", "active", "INDIRECT", "FILTER"),
        ("customers", "region", "INDIRECT", "GROUP_BY")}
