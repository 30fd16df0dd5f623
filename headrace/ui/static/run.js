/* One run's page, live: the state, the task rows that changed, the Gantt and new log lines. */
"use strict";
(function () {
  const hr = window.headrace;
  const head = document.getElementById("run-head");
  if (!head) return;
  const runId = head.dataset.run;
  const terminal = ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"];

  function taskRow(t) {
    let row = document.getElementById("task-" + t.id);
    const body = document.querySelector("#tasks-table tbody");
    if (!row && body) {
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      row = document.createElement("tr");
      row.id = "task-" + t.id;
      body.appendChild(row);
    }
    if (!row) return;
    const started = t.segments.length ? new Date(t.segments[0].start).toISOString() : null;
    row.innerHTML = '<td><input type="checkbox" name="task" value="' + hr.esc(t.key) + '"></td><td>' + hr.esc(t.key) +
      '</td><td><span class="state"></span></td><td class="num">' + t.attempts + "</td><td>" +
      (started ? '<time datetime="' + started + '">' + started + "</time>" : "-") + '</td><td class="num">' +
      (started ? hr.duration(started, t.end ? new Date(t.end).toISOString() : null) : "-") + '</td><td class="msg">' +
      hr.esc(t.message) + '</td><td><a href="/runs/' + encodeURIComponent(runId) + "/logs?task=" + encodeURIComponent(t.id) + '">log</a></td>';
    hr.badge(row.querySelector(".state"), t.type, t.state);
    hr.localTimes(row);
  }

  function apply(batch) {
    batch.runs.forEach(function (r) {
      if (r.id !== runId) return;
      hr.badge(document.querySelector("#run-state .state"), r.state_type, r.state_name);
      head.dataset.state = r.state_type;
      const tasks = document.getElementById("run-tasks");
      if (tasks) tasks.textContent = hr.num(r.tasks_completed) + "/" + hr.num(r.tasks_total) + " done" +
        (r.tasks_failed ? ", " + r.tasks_failed + " failed" : "") + (r.tasks_cached ? ", " + r.tasks_cached + " cached" : "");
      const dur = document.getElementById("run-duration");
      if (dur) dur.textContent = hr.duration(r.started_at, r.ended_at);
      const started = document.getElementById("run-started");
      if (started && r.started_at) {
        started.innerHTML = '<time datetime="' + hr.esc(r.started_at) + '">' + hr.esc(r.started_at) + "</time>";
        hr.localTimes(started);
      }
      const rows = document.getElementById("run-rows");
      if (rows) rows.textContent = hr.num(r.rows_in) + " / " + hr.num(r.rows_out);
      const loaded = document.getElementById("run-loaded");
      if (loaded) loaded.textContent = hr.num(r.rows_loaded);
      if (terminal.indexOf(r.state_type) >= 0) {
        hr.status("run finished");
        const actions = document.getElementById("run-actions");
        if (actions) actions.innerHTML = '<a class="button" href="">Reload for its errors, metrics, quality and re-run</a>';
      }
    });
    batch.tasks.forEach(taskRow);
    if (hr.gantt && batch.tasks.length) hr.gantt.upsert(batch.tasks);
    if (hr.logs) hr.logs.newer();
  }

  if (terminal.indexOf(head.dataset.state) < 0) {
    const live = new hr.Live("run=" + encodeURIComponent(runId), apply);
    live.start();
    setInterval(function () { if (!document.hidden && hr.logs && terminal.indexOf(head.dataset.state) < 0) hr.logs.newer(); }, 3000);
  }
})();
