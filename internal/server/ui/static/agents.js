// Reeve UI: the agents page keeps itself current (loaded by that page only).
// While the tab is visible it fetches /ui/agents/live every few seconds (the
// page says how often in data-poll-ms) and merges the rows in place: a row
// keeps its element (and so a keyboard selection) when its contents change,
// new rows are added and gone ones removed. Hidden, it does not poll.
(function () {
  "use strict";
  var box = document.getElementById("agents-live");
  if (!box || !window.fetch) { return; }
  var every = parseInt(box.getAttribute("data-poll-ms"), 10) || 5000;
  var timer = null, busy = false;

  function merge(into, from) {
    var old = {};
    Array.prototype.forEach.call(into.rows, function (r) { old[r.getAttribute("data-key")] = r; });
    var keep = {};
    Array.prototype.forEach.call(from.rows, function (r) {
      var key = r.getAttribute("data-key");
      var row = old[key];
      if (row) {
        if (row.innerHTML !== r.innerHTML) { row.innerHTML = r.innerHTML; }
      } else {
        row = document.importNode(r, true);
      }
      keep[key] = true;
      into.appendChild(row); // moves an existing row into the new order
    });
    Object.keys(old).forEach(function (key) { if (!keep[key]) { old[key].remove(); } });
  }

  function refresh() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch("/ui/agents/live", { credentials: "same-origin", cache: "no-store" }).then(function (res) {
      if (res.status === 401) { window.location.reload(); return null; }
      return res.ok ? res.text() : null;
    }).then(function (html) {
      if (!html) { return; }
      var t = document.createElement("template");
      t.innerHTML = html;
      Array.prototype.forEach.call(t.content.querySelectorAll("tbody[id]"), function (b) {
        var cur = document.getElementById(b.id);
        if (cur) { merge(cur, b); }
      });
      box.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function () { /* the next tick tries again */ }).then(function () { busy = false; });
  }

  function start() {
    if (timer === null) { timer = window.setInterval(refresh, every); }
  }
  function stop() {
    if (timer !== null) { window.clearInterval(timer); timer = null; }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { stop(); } else { refresh(); start(); }
  });
  if (!document.hidden) { start(); }
})();
