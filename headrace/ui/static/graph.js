/* The lineage graph: laid out by dagre in a Web Worker (off the page's main thread), drawn as SVG. */
"use strict";
(function () {
  const hr = window.headrace;
  document.addEventListener("DOMContentLoaded", function () {
    const el = document.getElementById("graph");
    const src = document.getElementById("graph-data");
    if (!el || !src) return;
    const graph = JSON.parse(src.textContent);
    if (!graph.nodes.length) { el.innerHTML = '<p class="empty">No lineage recorded.</p>'; return; }
    el.innerHTML = '<p class="muted">Laying out…</p>';
    const worker = new Worker("/static/graph-worker.js");
    worker.onmessage = function (ev) { draw(el, graph, ev.data); worker.terminate(); };
    worker.postMessage(graph);
  });

  function draw(el, graph, layout) {
    const byId = {};
    graph.nodes.forEach(function (n) { byId[n.id] = n; });
    const parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="' + (layout.width + 40) + '" height="' + (layout.height + 40) +
      '"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">' +
      '<path d="M0,0 L10,5 L0,10 z" fill="#9aa7b5"/></marker></defs><g transform="translate(20,20)">'];
    layout.edges.forEach(function (e) {
      const d = e.points.map(function (p, i) { return (i ? "L" : "M") + p.x.toFixed(1) + "," + p.y.toFixed(1); }).join(" ");
      parts.push('<path d="' + d + '" marker-end="url(#arrow)"><title>' + hr.esc(e.runs + " run(s); last " + (e.last_run || "")) + "</title></path>");
    });
    layout.nodes.forEach(function (p) {
      const n = byId[p.id];
      const label = n.name.length > 34 ? n.name.slice(0, 33) + "…" : n.name;
      parts.push('<a href="/datasets/' + n.id + '"><g class="node' + (n.focus ? " focus" : "") + '" transform="translate(' +
        (p.x - p.width / 2).toFixed(1) + "," + (p.y - p.height / 2).toFixed(1) + ')"><title>' + hr.esc(n.kind + " " + n.uri + " " + n.name) +
        '</title><rect width="' + p.width + '" height="' + p.height + '"/><text x="8" y="17">' + hr.esc(label) +
        '</text><text x="8" y="31" fill="#67707c" font-size="11">' + hr.esc(n.kind) + "</text></g></a>");
    });
    parts.push("</g></svg>");
    el.innerHTML = parts.join("");
  }
})();
