// regsync report: sortable and filterable tables, and the charts (Apache ECharts, inlined above). No network.
(function () {
  "use strict";
  function cellKey(cell) {
    var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
    var n = Number(v);
    return v !== "" && !isNaN(n) ? { n: n } : { s: v };
  }
  function compare(a, b) {
    if (a.n !== undefined && b.n !== undefined) return a.n - b.n;
    if (a.n !== undefined) return -1;
    if (b.n !== undefined) return 1;
    return a.s.localeCompare(b.s, "zh");
  }
  function headRow(table) { return table.tHead.rows[table.tHead.rows.length - 1]; }
  function sortTable(table, index, th) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(headRow(table).cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return { row: row, key: cellKey(row.cells[index]), i: i };
    });
    rows.sort(function (x, y) { return (ascending ? 1 : -1) * compare(x.key, y.key) || x.i - y.i; });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r.row); });
    body.appendChild(frag);
  }
  function filterTable(table, query, counter) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    if (counter) {
      var template = counter.getAttribute("data-template") || "{count}";
      counter.textContent = template.replace("{count}", shown.toLocaleString("en-US"));
    }
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(headRow(table).cells, function (th, i) {
      th.tabIndex = 0;
      th.title = document.body.getAttribute("data-sort-title") || "";
      th.addEventListener("click", function () { sortTable(table, i, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortTable(table, i, th); });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    var counter = document.getElementById(input.getAttribute("data-filter") + "-shown");
    input.addEventListener("input", function () { filterTable(table, input.value, counter); });
  });
  // the charts: one ECharts instance per div.chart, its option from the JSON beside it; the page is ready when
  // every chart has finished drawing (animation is off in the options)
  var divs = Array.prototype.slice.call(document.querySelectorAll("div.chart[data-spec]"));
  var pending = divs.length;
  var charts = [];
  function ready() { document.body.setAttribute("data-ready", "1"); }
  divs.forEach(function (div) {
    var option = JSON.parse(document.getElementById(div.getAttribute("data-spec")).textContent);
    var chart = echarts.init(div, null, { renderer: "canvas" });
    var done = false;
    chart.on("finished", function () {
      if (done) return;
      done = true;
      div.setAttribute("data-drawn", "1");
      pending -= 1;
      if (pending === 0) ready();
    });
    chart.setOption(option);
    charts.push(chart);
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  if (pending === 0) ready();
})();
