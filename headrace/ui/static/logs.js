/* The run page's log view: pages of lines fetched as you scroll (never the whole log),
   only the lines in view are in the page, and new lines arrive while the run is going. */
"use strict";
(function () {
  const hr = window.headrace;
  const LINE = 18, PAGE = 500, KEEP = 50000;
  const LEVELS = { 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL" };

  function LogView(el, runId) {
    this.el = el;
    this.runId = runId;
    this.lines = [];
    this.before = null;
    this.after = null;
    this.loading = false;
    this.spacer = document.createElement("div");
    this.spacer.className = "spacer";
    this.win = document.createElement("div");
    this.win.style.position = "absolute";
    this.win.style.left = "0";
    this.win.style.right = "0";
    this.spacer.appendChild(this.win);
    el.appendChild(this.spacer);
    const self = this;
    el.addEventListener("scroll", function () {
      self.draw();
      if (el.scrollTop < LINE * 20 && self.before) self.earlier();
    });
  }
  LogView.prototype.url = function (extra) {
    return "/api/runs/" + encodeURIComponent(this.runId) + "/logs?limit=" + PAGE + (extra || "");
  };
  LogView.prototype.fetch = function (extra) {
    return fetch(this.url(extra), { headers: { Accept: "application/json" } }).then(function (r) {
      return r.ok ? r.json() : Promise.reject(r.status);
    });
  };
  LogView.prototype.load = function () {
    const self = this;
    return this.fetch("").then(function (page) {
      self.lines = page.lines;
      self.before = page.before;
      self.after = page.after;
      self.draw(true);
    });
  };
  LogView.prototype.earlier = function () {
    if (this.loading) return;
    this.loading = true;
    const self = this;
    this.fetch("&before=" + this.before).then(function (page) {
      self.loading = false;
      self.before = page.lines.length ? page.before : null;
      self.lines = page.lines.concat(self.lines);
      self.el.scrollTop += page.lines.length * LINE;
      self.draw();
    }, function () { self.loading = false; });
  };
  LogView.prototype.newer = function () {
    if (this.loading || this.after === null || this.after === undefined) return this.load();
    this.loading = true;
    const self = this;
    const atEnd = this.el.scrollTop + this.el.clientHeight >= this.spacer.offsetHeight - LINE * 2;
    this.fetch("&after=" + this.after).then(function (page) {
      self.loading = false;
      if (!page.lines.length) return;
      self.after = page.after;
      self.lines = self.lines.concat(page.lines);
      if (self.lines.length > KEEP) { self.lines = self.lines.slice(-KEEP); self.before = self.lines[0].id; }
      self.draw(atEnd);
    }, function () { self.loading = false; });
  };
  LogView.prototype.draw = function (toEnd) {
    const el = this.el;
    this.spacer.style.height = Math.max(this.lines.length * LINE, 20) + "px";
    if (toEnd) el.scrollTop = this.lines.length * LINE;
    const first = Math.max(0, Math.floor(el.scrollTop / LINE) - 20);
    const last = Math.min(this.lines.length, first + Math.ceil(el.clientHeight / LINE) + 40);
    this.win.style.top = first * LINE + "px";
    const parts = [];
    for (let i = first; i < last; i++) {
      const l = this.lines[i];
      const level = LEVELS[l.level] || String(l.level);
      parts.push('<div class="log-line lvl-' + level.toLowerCase() + '" style="white-space:pre;height:' + LINE + 'px;overflow:hidden">' +
        '<span class="t">' + hr.esc((l.at || "").replace("T", " ").slice(0, 23)) + '</span> <span class="lvl">' + level +
        '</span> <span class="lg">' + hr.esc(l.logger) + '</span> <span class="m">' + hr.esc(l.message) + "</span></div>");
    }
    if (!this.lines.length) parts.push('<div class="log-line muted">No log lines yet.</div>');
    this.win.innerHTML = parts.join("");
  };

  hr.LogView = LogView;
  document.addEventListener("DOMContentLoaded", function () {
    const el = document.getElementById("logs");
    if (!el) return;
    hr.logs = new LogView(el, el.dataset.run);
    hr.logs.load();
  });
})();
