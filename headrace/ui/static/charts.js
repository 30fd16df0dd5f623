/* Charts over time (uPlot, shipped in the package) for the flow, dataset, quality and lake pages. */
"use strict";
(function () {
  const hr = window.headrace;
  function data(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function secs(iso) { return new Date(iso).getTime() / 1000; }
  const COLORS = ["#1f5fbf", "#17803d", "#c0262d", "#a86400", "#8c5bd6"];

  hr.chart = function (el, xs, series, opts) {
    if (!el || !window.uPlot || !xs.length) {
      if (el) el.innerHTML = '<p class="empty">Nothing to chart yet.</p>';
      return null;
    }
    el.innerHTML = "";
    const width = Math.max(el.clientWidth || 420, 300);
    const cfg = {
      width: width, height: 200,
      scales: { x: xs.length > 1 ? { time: true } : { time: true, range: [xs[0] - 3600, xs[0] + 3600] } },
      series: [{}].concat(series.map(function (s, i) {
        return { label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: 1.5,
                 points: { show: xs.length < 80 }, spanGaps: true };
      })),
      axes: [{}, { size: 60 }],
    };
    return new uPlot(cfg, [xs].concat(series.map(function (s) { return s.values; })), el);
  };

  function flowPage() {
    const stats = data("flow-data");
    if (!stats) return;
    const done = stats.runs.filter(function (r) { return r.at; });
    const xs = done.map(function (r) { return secs(r.at); });
    hr.chart(document.querySelector('[data-series="duration"]'), xs, [
      { label: "duration (s)", values: done.map(function (r) { return r.seconds; }) }]);
    hr.chart(document.querySelector('[data-series="rows"]'), xs, [
      { label: "read", values: done.map(function (r) { return r.rows_in; }) },
      { label: "written", values: done.map(function (r) { return r.rows_out; }) },
      { label: "loaded", values: done.map(function (r) { return r.rows_loaded; }) }]);
    hr.chart(document.querySelector('[data-series="success"]'), stats.daily.map(function (d) { return secs(d.day + "T00:00:00Z"); }), [
      { label: "success rate %", values: stats.daily.map(function (d) { return Math.round(d.success_rate * 1000) / 10; }) }]);
  }

  function datasetPage() {
    const rows = data("rows-data");
    if (!rows) return;
    hr.chart(document.getElementById("rows-chart"), rows.map(function (r) { return secs(r.at); }),
      [{ label: "rows written", values: rows.map(function (r) { return r.rows; }) }]);
  }

  function suitePage() {
    const suite = data("suite-data");
    if (!suite) return;
    const gates = suite.gates;
    hr.chart(document.getElementById("gate-chart"), gates.map(function (g) { return secs(g.at); }), [
      { label: "rows in", values: gates.map(function (g) { return g.rows_in; }) },
      { label: "passed", values: gates.map(function (g) { return g.rows_passed; }) },
      { label: "quarantined", values: gates.map(function (g) { return g.rows_quarantined; }), color: "#c0262d" }]);
    document.querySelectorAll(".check-chart").forEach(function (el) {
      const c = suite.checks[Number(el.dataset.check)];
      const pts = c.points;
      hr.chart(el, pts.map(function (p) { return secs(p.at); }), [
        { label: "unexpected % or observed", values: pts.map(function (p) { return p.value; }) },
        { label: "passed (1) / failed (0)", values: pts.map(function (p) { return p.success ? 1 : 0; }), color: "#17803d" }]);
    });
  }

  hr.lakeCharts = function (series) {
    const pick = function (names) {
      let xs = [];
      names.forEach(function (n) { (series[n] || []).forEach(function (p) { xs.push(secs(p.at)); }); });
      xs = Array.from(new Set(xs)).sort(function (a, b) { return a - b; });
      return [xs, names.map(function (n) {
        const by = {};
        (series[n] || []).forEach(function (p) { by[secs(p.at)] = p.value; });
        return { label: n.replace("lake_", "").replace(/_/g, " "), values: xs.map(function (x) { return x in by ? by[x] : null; }) };
      })];
    };
    const b = pick(["lake_bytes_read", "lake_bytes_written", "lake_backlog_bytes", "lake_bad_bytes"]);
    hr.chart(document.getElementById("lake-bytes"), b[0], b[1]);
    const r = pick(["lake_rows_read", "lake_good_rows", "lake_bad_rows"]);
    hr.chart(document.getElementById("lake-rows"), r[0], r[1]);
  };

  document.addEventListener("DOMContentLoaded", function () {
    flowPage();
    datasetPage();
    suitePage();
    const lake = data("lake-data");
    if (lake) hr.lakeCharts(lake.series);
  });
})();
