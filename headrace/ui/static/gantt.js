/* A small Gantt chart of task runs: one row per task run, its attempts, failed attempts,
   retry delays, waiting time and cache hits. Only the rows in view are drawn, so a run
   with thousands of tasks scrolls smoothly; it grows while the run goes on. */
"use strict";
(function () {
  const hr = window.headrace;
  const ROW = 20, LABEL = 230, PAD = 8, SVGNS = "http://www.w3.org/2000/svg";
  const COLORS = { run: "#3d7be0", failed: "#c0262d", wait: "#f2b544", pending: "#c9ced6", cached: "#8c5bd6" };

  function Gantt(el, rows) {
    this.el = el;
    this.rows = [];
    this.index = {};
    this.frame = null;
    this.upsert(rows || []);
    const self = this;
    el.addEventListener("scroll", function () { self.schedule(); });
    window.addEventListener("resize", function () { self.schedule(); });
    setInterval(function () { if (self.active()) self.schedule(); }, 1000);
  }
  Gantt.prototype.active = function () {
    return this.rows.some(function (r) { return r.end === null; });
  };
  Gantt.prototype.upsert = function (rows) {
    const self = this;
    rows.forEach(function (r) {
      if (r.id in self.index) self.rows[self.index[r.id]] = r;
      else { self.index[r.id] = self.rows.length; self.rows.push(r); }
    });
    this.schedule();
  };
  Gantt.prototype.schedule = function () {
    const self = this;
    if (this.frame) return;
    this.frame = requestAnimationFrame(function () { self.frame = null; self.draw(); });
  };
  Gantt.prototype.range = function () {
    let lo = Infinity, hi = -Infinity;
    const now = Date.now();
    this.rows.forEach(function (r) {
      if (r.start !== null) lo = Math.min(lo, r.start);
      hi = Math.max(hi, r.end !== null ? r.end : now);
      r.segments.forEach(function (s) { lo = Math.min(lo, s.start); hi = Math.max(hi, s.end || now); });
    });
    if (!isFinite(lo)) { lo = now; hi = now + 1000; }
    return [lo, Math.max(hi, lo + 1)];
  };
  Gantt.prototype.draw = function () {
    const el = this.el, rows = this.rows;
    const width = Math.max(el.clientWidth - 2, 400);
    const height = rows.length * ROW + 24;
    const [lo, hi] = this.range();
    const scale = (width - LABEL - PAD * 2) / (hi - lo);
    const x = function (t) { return LABEL + PAD + (t - lo) * scale; };
    const first = Math.max(0, Math.floor(el.scrollTop / ROW) - 10);
    const last = Math.min(rows.length, first + Math.ceil((el.clientHeight || 400) / ROW) + 20);
    let svg = el.querySelector("svg");
    if (!svg) { svg = document.createElementNS(SVGNS, "svg"); el.appendChild(svg); }
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const parts = ['<text x="' + (LABEL + PAD) + '" y="14" font-size="11" fill="#67707c">' + new Date(lo).toLocaleTimeString() +
      '</text><text x="' + (width - PAD) + '" y="14" font-size="11" fill="#67707c" text-anchor="end">' +
      hr.esc(hi - lo < 1000 ? Math.round(hi - lo) + " ms" : ((hi - lo) / 1000).toFixed(1) + " s") + "</text>"];
    for (let i = first; i < last; i++) {
      const r = rows[i], y = 24 + i * ROW;
      parts.push('<g data-task="' + hr.esc(r.id) + '"><title>' + hr.esc(r.key + ": " + r.state + (r.message ? " - " + r.message : "") +
        (r.attempts > 1 ? " (" + r.attempts + " attempts)" : "")) + "</title>");
      parts.push('<text x="4" y="' + (y + 14) + '" font-size="12" fill="' + (r.type === "FAILED" || r.type === "CRASHED" ? "#c0262d" : "#1d2430") +
        '">' + hr.esc(r.key.length > 32 ? r.key.slice(0, 31) + "…" : r.key) + "</text>");
      r.segments.forEach(function (s) {
        const end = s.end === null ? Date.now() : s.end;
        const w = Math.max(s.kind === "cached" ? 6 : 2, (end - s.start) * scale);
        parts.push('<rect x="' + x(s.start).toFixed(1) + '" y="' + (y + 4) + '" width="' + w.toFixed(1) + '" height="12" rx="2" fill="' +
          (COLORS[s.kind] || COLORS.run) + '"' + (s.kind === "run" && r.type === "FAILED" && s === r.segments[r.segments.length - 1] ? ' stroke="#c0262d"' : "") + "/>");
      });
      parts.push("</g>");
    }
    svg.innerHTML = parts.join("");
  };

  Gantt.prototype.loadRest = function (runId, cursor) {
    const self = this;
    let pages = 0;
    const next = function (c) {
      if (!c || pages++ >= 40) return;
      fetch("/api/runs/" + encodeURIComponent(runId) + "/tasks?cursor=" + encodeURIComponent(c), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (page) { self.upsert(page.gantt); next(page.next_cursor); });
    };
    next(cursor);
  };

  hr.Gantt = Gantt;
  document.addEventListener("DOMContentLoaded", function () {
    const el = document.getElementById("gantt");
    const data = document.getElementById("gantt-data");
    if (!el || !data) return;
    hr.gantt = new Gantt(el, JSON.parse(data.textContent));
    if (el.dataset.next) hr.gantt.loadRest(el.dataset.run, el.dataset.next);
  });
})();
