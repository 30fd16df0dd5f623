/* The runs list: rows of runs that change are updated in place; new runs appear on top (first page only). */
"use strict";
(function () {
  const hr = window.headrace;
  const table = document.getElementById("runs-table");
  if (!table) return;
  const body = table.tBodies[0];
  const first = table.dataset.live === "runs";

  function cells(r) {
    const started = r.started_at || r.created_at;
    const quality = r.quality_gates ? (r.checks_failed ? '<span class="bad-text">' + r.checks_failed + " failed</span>" : '<span class="ok-text">passed</span>') +
      (r.rows_quarantined ? ", " + hr.num(r.rows_quarantined) + " quarantined" : "") : "-";
    return '<td><span class="state"></span></td>' +
      '<td><a href="/runs/' + hr.esc(r.id) + '">' + hr.esc(r.name) + "</a></td>" +
      '<td><a href="/flows/' + encodeURIComponent(r.flow_name) + '">' + hr.esc(r.flow_name) + "</a></td>" +
      '<td><time datetime="' + hr.esc(started) + '">' + hr.esc(started) + "</time></td>" +
      '<td class="num">' + (r.started_at ? hr.duration(r.started_at, r.ended_at) : "-") + "</td>" +
      '<td class="num">' + hr.num(r.tasks_completed) + "/" + hr.num(r.tasks_total) +
      (r.tasks_failed ? ' <span class="bad-text">' + r.tasks_failed + " failed</span>" : "") + "</td>" +
      '<td class="num">' + hr.num(r.rows_in) + " / " + hr.num(r.rows_out) + "</td><td>" + quality + "</td>";
  }

  function apply(batch) {
    batch.runs.forEach(function (r) {
      let row = document.getElementById("run-" + r.id);
      if (!row) {
        if (!first) return;
        const empty = body.querySelector("tr.empty");
        if (empty) empty.remove();
        row = document.createElement("tr");
        row.id = "run-" + r.id;
        body.insertBefore(row, body.firstChild);
      }
      row.innerHTML = cells(r);
      hr.badge(row.querySelector(".state"), r.state_type, r.state_name);
      hr.localTimes(row);
      row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash");
    });
  }

  const live = new hr.Live(table.dataset.query || "", apply);
  live.start();
})();
