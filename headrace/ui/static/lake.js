/* The lake jobs page refreshes its counters every few seconds while a job runs (paused when hidden). */
"use strict";
(function () {
  const hr = window.headrace;
  const box = document.getElementById("lake");
  if (!box || !box.dataset.live) return;
  const focus = new URLSearchParams(window.location.search).get("run");
  function fmtBytes(v) {
    if (v === null || v === undefined) return "-";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v) + " " + units[i];
  }
  function refresh() {
    if (document.hidden) return;
    fetch("/api/lake" + (focus ? "?run=" + encodeURIComponent(focus) : ""), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        d.runs.forEach(function (r) {
          const row = document.getElementById("lake-" + r.id);
          if (!row) return;
          const c = row.cells, l = r.lake;
          hr.badge(c[1].querySelector(".state"), r.state_type, r.state_name);
          [hr.num(l.lake_files_read), fmtBytes(l.lake_bytes_read), hr.num(l.lake_rows_read), fmtBytes(l.lake_backlog_bytes),
           hr.num(l.lake_good_rows), hr.num(l.lake_bad_rows), fmtBytes(l.lake_bad_bytes), fmtBytes(l.lake_bytes_written)]
            .forEach(function (text, i) { c[i + 2].textContent = text; });
        });
        hr.lakeCharts(d.series);
        if (!d.live) clearInterval(timer);
      });
  }
  const timer = setInterval(refresh, 3000);
})();
