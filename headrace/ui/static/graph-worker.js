/* Lays the lineage graph out with dagre, away from the page's main thread. */
"use strict";
importScripts("/static/vendor/dagre/dagre.min.js");
onmessage = function (ev) {
  const graph = ev.data;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 70 });
  g.setDefaultEdgeLabel(function () { return {}; });
  graph.nodes.forEach(function (n) { g.setNode(String(n.id), { width: Math.min(260, 40 + n.name.length * 7), height: 40 }); });
  graph.edges.forEach(function (e) { g.setEdge(String(e.source), String(e.target)); });
  dagre.layout(g);
  const nodes = g.nodes().map(function (id) { const n = g.node(id); return { id: Number(id), x: n.x, y: n.y, width: n.width, height: n.height }; });
  const edges = graph.edges.map(function (e) {
    const laid = g.edge(String(e.source), String(e.target));
    return { points: laid ? laid.points : [], runs: e.runs, last_run: e.last_run };
  });
  postMessage({ nodes: nodes, edges: edges, width: g.graph().width || 400, height: g.graph().height || 200 });
};
