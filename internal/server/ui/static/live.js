// Reeve UI: live updates of a run's page (loaded by the run page only).
// One EventSource per tab on /ui/runs/{id}/events, closed while the tab is
// hidden; it updates the state badge, the task rows and, on the logs tab
// without a search or level filter, appends new log lines. If the stream
// keeps failing, the page's parts are refreshed by polling instead.
(function () {
  "use strict";
  var head = document.getElementById("run-head");
  if (!head || !window.fetch) { return; }
  var runID = head.getAttribute("data-run");
  var log = document.getElementById("log");
  var liveLog = log && log.hasAttribute("data-live");
  var tasks = document.querySelector("#tasks tbody");
  var newLines = document.getElementById("new-lines");
  var es = null, errors = 0, pollTimer = null, done = head.hasAttribute("data-finished");
  var cursor = liveLog ? { after: log.getAttribute("data-after") || "0", n: log.getAttribute("data-n") || "0" } : null;
  var unseen = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  // badge builds the same markup as the server's state badge.
  function badge(d) {
    var s = el("span", "state state-" + d.class);
    s.setAttribute("data-state", d.state);
    var i = el("span", "state-icon", d.icon);
    i.setAttribute("aria-hidden", "true");
    s.appendChild(i);
    s.appendChild(document.createTextNode(" " + d.state));
    return s;
  }
  function time(d) {
    var t = el("time", "", d.time);
    if (d.iso) { t.setAttribute("datetime", d.iso); }
    return t;
  }

  function onRun(d) {
    var box = document.getElementById("run-state");
    if (box) {
      box.replaceChildren(badge(d));
      if (d.message) { box.appendChild(document.createTextNode(" ")); box.appendChild(el("span", "state-msg", d.message)); }
    }
    var dur = document.getElementById("run-duration");
    if (dur && d.duration) { dur.textContent = d.duration; }
    if (d.finished) {
      var cancel = document.getElementById("cancel");
      if (cancel && cancel.form) { cancel.form.remove(); }
    }
  }

  function onTask(d) {
    if (!tasks) { return; }
    var row = null;
    for (var i = 0; i < tasks.rows.length; i++) {
      if (tasks.rows[i].getAttribute("data-task") === d.key) { row = tasks.rows[i]; break; }
    }
    if (!row) {
      var empty = tasks.querySelector("tr.empty");
      if (empty) { empty.remove(); }
      row = el("tr");
      row.setAttribute("data-task", d.key);
      ["mono", "", "", "", ""].forEach(function (c) { row.appendChild(el("td", c)); });
      row.cells[0].textContent = d.key;
      tasks.appendChild(row);
    }
    // The cells: key, state, attempt, since, message.
    row.cells[1].replaceChildren(badge(d));
    row.cells[2].textContent = String(d.attempt || 0);
    row.cells[3].replaceChildren(time(d));
    row.cells[4].textContent = d.message || "";
  }

  function atBottom() {
    var doc = document.documentElement;
    return window.innerHeight + window.scrollY >= doc.scrollHeight - 40;
  }
  function showUnseen() {
    if (!newLines) { return; }
    newLines.textContent = unseen + (unseen === 1 ? " new line" : " new lines") + " ↓";
    newLines.hidden = unseen === 0;
  }
  function onLog(d) {
    if (!liveLog) { return; }
    var follow = atBottom();
    var empty = log.querySelector("li.empty");
    if (empty) { empty.remove(); }
    var li = el("li", "lvl-" + d.level);
    li.id = "L" + d.n;
    var a = el("a", "ln", String(d.n));
    a.href = "#L" + d.n;
    li.appendChild(a);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(time(d));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "lvl", d.level));
    if (d.task) { li.appendChild(document.createTextNode(" ")); li.appendChild(el("span", "task", d.task)); }
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "msg", d.message));
    if (d.attrs) { li.appendChild(document.createTextNode(" ")); li.appendChild(el("span", "attrs", JSON.stringify(d.attrs))); }
    log.appendChild(li);
    // A live log is unfiltered: every line is shown.
    var count = document.getElementById("log-count");
    if (count) { count.textContent = d.n + " of " + d.n + " lines."; }
    if (follow) {
      window.scrollTo(0, document.documentElement.scrollHeight);
    } else {
      unseen++;
      showUnseen();
    }
  }
  if (newLines) {
    newLines.addEventListener("click", function () {
      unseen = 0;
      showUnseen();
      window.scrollTo(0, document.documentElement.scrollHeight);
    });
    window.addEventListener("scroll", function () {
      if (unseen > 0 && atBottom()) { unseen = 0; showUnseen(); }
    }, { passive: true });
  }

  function handler(fn) {
    return function (e) {
      errors = 0;
      if (e.lastEventId && cursor) {
        var p = e.lastEventId.split(".");
        cursor.after = p[0]; cursor.n = p[1];
      }
      var d;
      try { d = JSON.parse(e.data); } catch (err) { return; }
      fn(d);
    };
  }

  function open() {
    if (es || done || pollTimer) { return; }
    var url = "/ui/runs/" + encodeURIComponent(runID) + "/events";
    url += cursor ? "?after=" + encodeURIComponent(cursor.after) + "&n=" + encodeURIComponent(cursor.n) : "?logs=0";
    es = new EventSource(url);
    es.addEventListener("run", handler(onRun));
    es.addEventListener("task", handler(onTask));
    es.addEventListener("log", handler(onLog));
    es.addEventListener("end", handler(function (d) { onRun(d); done = true; close(); }));
    es.onerror = function () {
      errors++;
      // EventSource retries by itself; a closed one (a 401, a 404) or
      // one that keeps failing gives way to polling the page.
      if (es && (es.readyState === EventSource.CLOSED || errors >= 3)) { close(); startPolling(); }
    };
  }
  function close() {
    if (es) { es.close(); es = null; }
  }

  // Polling fallback: fetch the page and swap in its live parts.
  function startPolling() {
    if (pollTimer || done) { return; }
    pollTimer = window.setInterval(refresh, 5000);
  }
  function refresh() {
    if (document.hidden) { return; }
    fetch(location.href, { credentials: "same-origin", redirect: "manual" }).then(function (r) {
      if (r.type === "opaqueredirect" || r.status === 401) { location.reload(); return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) { return; }
      var doc = new DOMParser().parseFromString(html, "text/html");
      ["run-state", "run-duration"].forEach(function (id) {
        var a = document.getElementById(id), b = doc.getElementById(id);
        if (a && b) { a.replaceChildren.apply(a, Array.from(b.childNodes)); }
      });
      var nt = doc.querySelector("#tasks tbody");
      if (tasks && nt) { tasks.replaceChildren.apply(tasks, Array.from(nt.childNodes)); }
      var nl = doc.getElementById("log");
      if (liveLog && nl) {
        var follow = atBottom();
        log.replaceChildren.apply(log, Array.from(nl.childNodes));
        if (follow) { window.scrollTo(0, document.documentElement.scrollHeight); }
      }
      var nh = doc.getElementById("run-head");
      if (nh && nh.hasAttribute("data-finished")) {
        done = true;
        window.clearInterval(pollTimer);
      }
    }).catch(function () { /* try again at the next tick */ });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { close(); } else { open(); }
  });
  if (!document.hidden) { open(); }
})();
