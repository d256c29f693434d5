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
  // The preferences form sends the browser's own zone, which "local" means.
  document.addEventListener("DOMContentLoaded", function () {
    var b = document.getElementById("browser_tz");
    if (b && window.Intl) {
      try { b.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { /* no zone: the server's */ }
    }
  });
})();
