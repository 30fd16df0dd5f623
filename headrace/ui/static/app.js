/* headrace: shared page script. Local times, the CSRF header, and the live feed
   (server-sent events resuming from the last event id, polling when they fail,
   paused while the tab is hidden). */
"use strict";
(function () {
  const hr = (window.headrace = window.headrace || {});

  hr.csrf = function () {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  };

  hr.localTimes = function (root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      const d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.title = el.textContent; el.textContent = d.toLocaleString(); }
    });
  };

  hr.status = function (text) {
    const el = document.getElementById("live-status");
    if (el) { el.hidden = !text; el.textContent = text || ""; }
  };

  /* Live: onChange(batch) gets {last_id, runs, tasks, changes}; params is the query string. */
  hr.Live = function (params, onChange) {
    this.params = params || "";
    this.onChange = onChange;
    this.lastId = null;
    this.source = null;
    this.timer = null;
    this.failures = 0;
    const self = this;
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) { self.stop(); hr.status("live updates paused"); } else { self.start(); }
    });
  };
  hr.Live.prototype.url = function (base) {
    const q = [this.params];
    if (this.lastId !== null) q.push("last_event_id=" + this.lastId);
    return base + "?" + q.filter(Boolean).join("&");
  };
  hr.Live.prototype.start = function () {
    if (document.hidden || this.source || this.timer) return;
    if (!window.EventSource || this.failures >= 3) { this.poll(); return; }
    const self = this;
    const es = (this.source = new EventSource(this.url("/api/events")));
    const handle = function (ev) {
      self.failures = 0;
      if (ev.lastEventId) self.lastId = ev.lastEventId;
      hr.status("live");
      if (ev.type === "change") self.onChange(JSON.parse(ev.data));
      if (ev.type === "reset") window.location.reload();
    };
    ["hello", "change", "cursor", "reset"].forEach(function (t) { es.addEventListener(t, handle); });
    es.onerror = function () {
      self.failures += 1;
      hr.status("reconnecting…");
      if (self.failures >= 3) { self.stop(); self.poll(); }
    };
  };
  hr.Live.prototype.poll = function () {
    const self = this;
    hr.status("live (polling)");
    const tick = function () {
      self.timer = null;
      if (document.hidden) return;
      const q = [self.params, "after=" + (self.lastId === null ? "" : self.lastId)].filter(Boolean).join("&");
      fetch("/api/changes?" + q, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (batch) {
          const had = self.lastId !== null;
          self.lastId = batch.last_id;
          if (had && (batch.runs.length || batch.tasks.length)) self.onChange(batch);
          self.timer = setTimeout(tick, batch.more ? 50 : 3000);
        })
        .catch(function () { hr.status("store unreachable, retrying"); self.timer = setTimeout(tick, 5000); });
    };
    tick();
  };
  hr.Live.prototype.stop = function () {
    if (this.source) { this.source.close(); this.source = null; }
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
  };

  hr.stateClass = { COMPLETED: "ok", FAILED: "bad", CRASHED: "bad", CANCELLED: "warn", RUNNING: "live",
                    PENDING: "wait", SCHEDULED: "wait" };
  hr.badge = function (el, type, name) {
    if (!el) return;
    el.className = "state " + (hr.stateClass[type] || "wait");
    el.dataset.state = type;
    el.textContent = name;
  };
  hr.esc = function (s) {
    return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  };
  hr.num = function (v) { return v === null || v === undefined ? "-" : Number(v).toLocaleString(); };
  hr.duration = function (start, end) {
    if (!start) return "-";
    const s = ((end ? new Date(end) : new Date()) - new Date(start)) / 1000;
    const text = s < 1 ? Math.round(s * 1000) + " ms" : s < 120 ? s.toFixed(1) + " s" : s < 7200 ? (s / 60).toFixed(1) + " min" : (s / 3600).toFixed(1) + " h";
    return end ? text : text + " so far";
  };

  document.addEventListener("DOMContentLoaded", function () {
    hr.localTimes();
    document.querySelectorAll("select.autosubmit").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
  });
})();
