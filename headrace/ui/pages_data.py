"""HTML pages about data: datasets with their lineage, quality suites over time, a run's quality report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from headrace.store import views_data
from headrace.ui import filters, history
from headrace.ui.data import check_view, get_run, quality_of
from headrace.ui.lineage import MAX_DEPTH, dataset_graph
from headrace.ui.web import NotFound, page, store_of

router = APIRouter(include_in_schema=False)


@router.get("/datasets", response_class=HTMLResponse)
def datasets(request: Request, q: str | None = None, cursor: str | None = None) -> Response:
    rows, nxt = views_data.datasets_page(store_of(request), after=filters.name_cursor(cursor), search=q or None)
    next_link = f"/datasets?{filters.query_string({'q': q or ''}, cursor=filters.encode_cursor(nxt))}" if nxt else None
    return page(request, "datasets.html", datasets=rows, q=q or "", next_link=next_link)


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset(request: Request, dataset_id: int, depth: str | None = None, cursor: str | None = None) -> Response:
    """A dataset: its lineage graph (one hop by default), row counts over time, the runs that used it."""
    store = store_of(request)
    row = views_data.dataset(store, dataset_id)
    if row is None:
        raise NotFound(f"no dataset with id {dataset_id}; the datasets page lists them")
    hops = filters.int_param("depth", depth, 1, MAX_DEPTH) or 1
    io, nxt = views_data.dataset_io_page(store, dataset_id, before=filters.time_cursor(cursor))
    written = [{"at": r["at"], "rows": r["rows"]} for r in reversed(io) if r["direction"] == "output" and r["rows"]]
    next_link = f"/datasets/{dataset_id}?depth={hops}&cursor={filters.encode_cursor(nxt)}" if nxt else None
    return page(request, "dataset.html", dataset=row, io=io, graph=dataset_graph(store, dataset_id, hops),
                depth=hops, max_depth=MAX_DEPTH, written=written, next_link=next_link)


@router.get("/quality", response_class=HTMLResponse)
def quality(request: Request) -> Response:
    return page(request, "quality.html", suites=history.suites_overview(store_of(request)))


@router.get("/quality/{suite}", response_class=HTMLResponse)
def suite(request: Request, suite: str) -> Response:
    data = history.suite_history(store_of(request), suite)
    if not data["checks"] and not data["gates"]:
        raise NotFound(f"no quality results for suite {suite!r}; the quality page lists the suites")
    return page(request, "suite.html", **data)


@router.get("/runs/{run_id}/quality", response_class=HTMLResponse)
def run_quality(request: Request, run_id: str) -> Response:
    """The run's quality report (what ``headrace quality report`` writes to a file)."""
    store = store_of(request)
    run = get_run(store, run_id)
    report = quality_of(store, run["id"])
    suites = {name: [check_view(r) for r in rows] for name, rows in report["suites"].items()}
    return page(request, "run_quality.html", run=run, report=report, suites=suites)
