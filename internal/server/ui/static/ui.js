// Reeve UI: small enhancements only; every page works without this file.
(function () {
  "use strict";
  // Forms with data-confirm ask first.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });
  // "/" focuses the page's search field.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA") { return; }
    var f = document.querySelector("[data-search]");
    if (f) { e.preventDefault(); f.focus(); }
  });
  // Durations of running runs tick: an element with data-tick shows
  // data-elapsed (the milliseconds it had run when the page was made) plus
  // the time since, every second, formatted like the server does. A script
  // that writes the element itself (a live update) ends its ticking, unless
  // the state badge named by data-tick-while still shows a running state.
  function fmtDuration(ms) {
    var s = ms / 1000;
    if (ms < 1000) { return Math.floor(ms) + "ms"; }
    if (s < 60) { return s.toFixed(1) + "s"; }
    var m = Math.floor(s / 60);
    if (m < 60) { return m + "m " + String(Math.floor(s) % 60).padStart(2, "0") + "s"; }
    return Math.floor(m / 60) + "h " + String(m % 60).padStart(2, "0") + "m";
  }
  window.reeveTick = function (el, elapsed) {
    el.setAttribute("data-tick", "");
    el.setAttribute("data-elapsed", String(elapsed));
    el.reeveTick = { base: elapsed, at: Date.now(), text: null };
  };
  // stillRuns reports whether the state badge an element names in
  // data-tick-while (a live-updated one) still shows a running state.
  function stillRuns(el) {
    var sel = el.getAttribute("data-tick-while");
    var b = sel && document.querySelector(sel + " .state");
    return !!b && ["Running", "Retrying", "Cancelling"].indexOf(b.getAttribute("data-state")) >= 0;
  }
  function tick() {
    var els = document.querySelectorAll("[data-tick]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i], t = el.reeveTick;
      if (!t) { t = el.reeveTick = { base: Number(el.getAttribute("data-elapsed")) || 0, at: loaded, text: null }; }
      if (t.text !== null && el.textContent !== t.text && !stillRuns(el)) { el.removeAttribute("data-tick"); continue; }
      t.text = fmtDuration(t.base + Date.now() - t.at);
      el.textContent = t.text;
    }
  }
  var loaded = Date.now();
  setInterval(tick, 1000);
  // The preferences form sends the browser's own zone, which "local" means.
  document.addEventListener("DOMContentLoaded", function () {
    var b = document.getElementById("browser_tz");
    if (b && window.Intl) {
      try { b.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { /* no zone: the server's */ }
    }
  });
})();
