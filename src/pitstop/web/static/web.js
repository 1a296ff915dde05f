// pitstop dashboard: refresh the page's <main> in place every data-refresh seconds (0: never),
// unless someone is typing in a form. Hand-written; no libraries.
(function () {
  "use strict";
  var main = document.getElementById("live");
  if (!main) { return; }
  var seconds = parseInt(main.getAttribute("data-refresh") || "0", 10);
  if (!(seconds > 0)) { return; }
  function busy() {
    var el = document.activeElement;
    if (document.querySelector(".js-plotly-plot:hover")) { return true; } // someone reads a chart (charts.js)
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }
  function refresh() {
    if (document.hidden || busy()) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { return null; }
        return response.text();
      })
      .then(function (text) {
        if (!text || busy()) { return; }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
        if (fresh) { main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes)); }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, seconds * 1000);
}());
