// pitstop dashboard: the asset page's sensor charts, drawn by plotly.js (the plotly package's bundle,
// served from /ui/vendor) from the figure JSON the server writes beside each chart (web/plots.py).
// Zooming one chart (a drag, or a range button) zooms the asset's other charts to the same span, and
// each loads finer buckets for it from /ui/assets/<asset>/series; double-click goes back. After web.js
// refreshes the page the charts are drawn again, at the zoom the reader chose.
(function () {
  "use strict";
  if (!window.Plotly) { return; }
  var CONFIG = {
    displaylogo: false,
    responsive: true,
    // no "download as PNG": plotly draws it through a blob: image, which the CSP's img-src refuses
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toImage"]
  };
  var zoom = null; // [start, end] in the charts' local time, kept across refreshes; null: the page's extent
  var timers = {};
  var revision = 0;

  function original(div) {
    var el = document.getElementById(div.id + "-figure");
    return el ? JSON.parse(el.textContent) : null;
  }

  function charts() {
    return Array.prototype.slice.call(document.querySelectorAll("#plots div.chart[data-sensor]"));
  }

  function same(a, b) {
    return !!a && !!b && String(a[0]) === String(b[0]) && String(a[1]) === String(b[1]);
  }

  function rangeOf(ev) {
    if (ev["xaxis.range[0]"] !== undefined) { return [ev["xaxis.range[0]"], ev["xaxis.range[1]"]]; }
    if (ev["xaxis.range"]) { return ev["xaxis.range"].slice(0, 2); }
    return null;
  }

  function draw(div) {
    var fig = original(div);
    if (!fig) { return; }
    Plotly.newPlot(div, fig.data, fig.layout, CONFIG).then(function () {
      div.on("plotly_relayout", function (ev) { relayout(div, ev); });
      if (zoom) { Plotly.relayout(div, { "xaxis.range": zoom }); }
    });
  }

  function reset(div) {
    var fig = original(div);
    if (!fig || !div.data) { return; }
    fig.layout.yaxis.uirevision = "r" + (++revision);
    fig.layout.xaxis.uirevision = "r" + revision;
    Plotly.react(div, fig.data, fig.layout, CONFIG);
  }

  function relayout(div, ev) {
    var range = rangeOf(ev);
    var fig = original(div);
    if (!range && !ev["xaxis.autorange"]) { return; } // not a change of the time span
    if (!range || (fig && same(range, fig.layout.xaxis.range))) { // back to the page's extent
      var zoomed = zoom !== null;
      zoom = null;
      (zoomed ? charts() : [div]).forEach(reset);
      return;
    }
    if (!same(range, zoom)) {
      zoom = range;
      charts().forEach(function (other) {
        if (other !== div && other.data) { Plotly.relayout(other, { "xaxis.range": range }); }
      });
    }
    refine(div, range, ev["yaxis.range[0]"] !== undefined);
  }

  // Finer buckets for the zoomed span (and its y-range, unless the reader zoomed y too).
  function refine(div, range, keepY) {
    var base = document.getElementById("plots").getAttribute("data-series");
    window.clearTimeout(timers[div.id]);
    timers[div.id] = window.setTimeout(function () {
      var url = base + "?sensor=" + encodeURIComponent(div.getAttribute("data-sensor")) +
        "&start=" + encodeURIComponent(range[0]) + "&end=" + encodeURIComponent(range[1]);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (got) {
          if (!got || !div.isConnected || !div.data || !same(zoom, range)) { return; }
          var marks = div.data.filter(function (t) { return t.meta !== "series"; });
          var layout = Object.assign({}, div.layout);
          layout.xaxis = Object.assign({}, div.layout.xaxis, { range: range.slice(), autorange: false });
          if (!keepY && got.yrange) {
            layout.yaxis = Object.assign({}, div.layout.yaxis, { range: got.yrange, autorange: false, uirevision: "r" + (++revision) });
          }
          Plotly.react(div, got.data.concat(marks), layout, CONFIG);
        })
        .catch(function () { /* the chart keeps what it had */ });
    }, 250);
  }

  function drawNew() {
    charts().forEach(function (div) { if (!div.classList.contains("js-plotly-plot")) { draw(div); } });
  }

  var live = document.getElementById("live");
  if (live) {
    new MutationObserver(function (records) {
      records.forEach(function (record) {
        record.removedNodes.forEach(function (node) {
          if (node.querySelectorAll) { node.querySelectorAll(".js-plotly-plot").forEach(function (d) { Plotly.purge(d); }); }
        });
      });
      drawNew();
    }).observe(live, { childList: true });
  }
  drawNew();
}());
