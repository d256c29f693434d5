// Reeve UI: live updates of a run's page (loaded by the run page only).
// One EventSource per tab on /ui/runs/{id}/events, closed while the tab is
// hidden; it updates the state badge, the task rows, the graph's nodes,
// the timeline's bars, the mapped tasks' counts and, on the logs tab
// without a search or level filter, appends new log lines. State changes
// are applied once per animation frame, the newest per task, so a burst
// of events costs one DOM update. If the stream keeps failing, the page's
// parts are refreshed by polling instead.
(function () {
  "use strict";
  var head = document.getElementById("run-head");
  if (!head || !window.fetch) { return; }
  var runID = head.getAttribute("data-run");
  var log = document.getElementById("log");
  var liveLog = log && log.hasAttribute("data-live");
  var tasks = document.querySelector("#tasks tbody");
  var tabs = document.getElementById("run-tabs");
  // The task cursor: the page holds every task change up to it.
  var since = (tabs && tabs.getAttribute("data-since")) || "0";
  var timeline = document.getElementById("timeline");
  // The server's clock minus the browser's, for the timeline's "now".
  var skew = timeline ? (Number(timeline.getAttribute("data-now")) || Date.now()) - Date.now() : 0;
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

  function taskLink(key) {
    var a = el("a", "", key);
    a.href = "/ui/runs/" + encodeURIComponent(runID) + "/tasks/" + encodeURIComponent(key);
    return a;
  }
  function taskRow(key, group) {
    if (!tasks) { return null; }
    var row = tasks.querySelector('tr[data-task="' + CSS.escape(key) + '"]');
    if (!row) {
      var empty = tasks.querySelector("tr.empty");
      if (empty) { empty.remove(); }
      row = el("tr");
      row.setAttribute("data-task", key);
      ["mono", "", "", "", ""].forEach(function (c) { row.appendChild(el("td", c)); });
      row.cells[0].appendChild(taskLink(key));
      tasks.appendChild(row);
    }
    if (group && !row.hasAttribute("data-group")) {
      row.setAttribute("data-group", "");
      row.className = "task-group";
    }
    return row;
  }
  function counts(parent, text) {
    var c = parent.querySelector(".group-counts");
    if (!c) {
      parent.appendChild(document.createTextNode(" "));
      c = parent.appendChild(el("span", "group-counts"));
    }
    c.textContent = text;
  }
  // The graph's node of a task: its colour, dash, icon, state and title.
  function graphNode(key, d, short) {
    var n = document.getElementById("n-" + key);
    if (!n) { return; }
    var group = n.classList.contains("gn-group");
    if (group && short === undefined) { return; } // a group's colour is its children's
    var cls = "gnode gn-" + d.class;
    if (d.state === "Pending" || d.state === "Scheduled" || d.state === "Submitted") { cls += " gn-notstarted"; }
    if (group) { cls += " gn-group"; }
    n.setAttribute("class", cls);
    n.setAttribute("data-state", d.state);
    var icon = n.querySelector(".gn-icon"), st = n.querySelector(".gn-state"), title = n.querySelector("title");
    if (icon) { icon.textContent = d.icon; }
    if (st) { st.textContent = d.state; }
    if (title) { title.textContent = key + ": " + d.state + (group ? " (mapped: " + d.text + ")" : ""); }
    if (group) {
      var c = n.querySelector(".gn-counts");
      if (c) { c.textContent = short; }
    }
  }
  function timelineRow(key, d, text) {
    if (!timeline) { return; }
    var row = document.getElementById("tl-" + key);
    if (!row) { return; }
    var st = row.querySelector(".tl-state");
    if (st) { st.replaceChildren(badge(d)); }
    row.setAttribute("data-start", String(d.start || 0));
    row.setAttribute("data-end", String(d.end || 0));
    var bar = row.querySelector(".tl-bar");
    if (bar) { bar.setAttribute("class", "tl-bar gn-" + d.class); }
    if (text !== undefined) { counts(row.querySelector(".tl-name"), text); }
  }

  function onTask(d) {
    var row = taskRow(d.key, false);
    if (row) {
      // The cells: key, state, attempt, since, message.
      row.cells[1].replaceChildren(badge(d));
      row.cells[2].textContent = String(d.attempt || 0);
      row.cells[3].replaceChildren(time(d));
      row.cells[4].textContent = d.message || "";
    }
    graphNode(d.key, d);
    var extra = document.querySelector('#graph-extra li[data-task="' + CSS.escape(d.key) + '"] .state');
    if (extra) { extra.replaceWith(badge(d)); }
    if (!document.querySelector('#timeline [data-group][data-task="' + CSS.escape(d.key) + '"]')) { timelineRow(d.key, d); }
  }
  function onGroup(d) {
    var row = taskRow(d.key, true);
    if (row) {
      counts(row.cells[0], d.text);
      if (!row.cells[1].firstChild || row.cells[2].textContent === "") { row.cells[1].replaceChildren(badge(d)); }
    }
    graphNode(d.key, d, d.short);
    timelineRow(d.key, d, d.text);
    var extra = document.querySelector('#graph-extra li[data-task="' + CSS.escape(d.key) + '"]');
    if (extra) { counts(extra, d.text); }
  }

  // The timeline's bars and axis, from each row's data-start/data-end
  // (Unix ms; an end of 0 is still running) and the axis's.
  function fmt(ms) {
    if (ms < 0) { return "—"; }
    if (ms < 1000) { return Math.floor(ms) + "ms"; }
    var s = ms / 1000;
    if (s < 60) { return (Math.floor(s * 10) / 10).toFixed(1) + "s"; }
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (s < 3600) { return Math.floor(s / 60) + "m " + pad(Math.floor(s) % 60) + "s"; }
    return Math.floor(s / 3600) + "h " + pad(Math.floor(s / 60) % 60) + "m";
  }
  function layoutTimeline() {
    if (!timeline) { return; }
    var now = Date.now() + skew;
    var start = Number(timeline.getAttribute("data-start")) || 0;
    var end = Number(timeline.getAttribute("data-end")) || 0;
    var rows = timeline.querySelectorAll(".tl-row"), spans = [], i;
    for (i = 0; i < rows.length; i++) {
      var s = Number(rows[i].getAttribute("data-start")) || 0, e = Number(rows[i].getAttribute("data-end")) || 0;
      spans.push([s, e]);
      if (s && (!start || s < start)) { start = s; }
      if (s && (e || now) > end) { end = e || now; }
    }
    if (timeline.hasAttribute("data-open") && now > end) { end = now; }
    var total = end - start;
    var pct = function (v, least) { return Math.max(total > 0 ? 100 * v / total : 0, least).toFixed(2) + "%"; };
    for (i = 0; i < rows.length; i++) {
      var bar = rows[i].querySelector(".tl-bar"), dur = rows[i].querySelector(".tl-dur");
      var b = spans[i][0], f = spans[i][1] || now;
      if (!b) {
        bar.setAttribute("x", "0"); bar.setAttribute("width", "0");
        if (dur) { dur.textContent = "not started"; }
        continue;
      }
      bar.setAttribute("x", pct(b - start, 0));
      bar.setAttribute("width", pct(Math.max(f - b, 0), 0.4)); // as the server: a bar that took no time shows
      if (dur) { dur.textContent = fmt(Math.max(f - b, 0)); }
    }
    var ticks = timeline.querySelectorAll(".tl-ticks span");
    for (i = 0; i < ticks.length; i++) { ticks[i].textContent = "+" + fmt(total * i / (ticks.length - 1)); }
  }

  // State changes wait for the next frame; the newest per task wins.
  var queued = { task: new Map(), group: new Map(), run: null }, scheduled = false;
  function enqueue(kind, d) {
    if (kind === "run") { queued.run = d; } else { queued[kind].set(d.key, d); }
    if (!scheduled) {
      scheduled = true;
      window.requestAnimationFrame(flush);
      window.setTimeout(flush, 250); // a frame may not come (a background tab)
    }
  }
  function flush() {
    if (!scheduled) { return; }
    scheduled = false;
    var q = queued;
    queued = { task: new Map(), group: new Map(), run: null };
    q.task.forEach(onTask);
    q.group.forEach(onGroup);
    if (q.run) {
      onRun(q.run);
      if (q.run.finished && timeline) { timeline.removeAttribute("data-open"); }
    }
    layoutTimeline();
  }
  if (timeline && !done) {
    var tick = window.setInterval(function () {
      if (!timeline.hasAttribute("data-open")) { window.clearInterval(tick); return; }
      if (!document.hidden) { layoutTimeline(); }
    }, 1000);
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
      if (e.lastEventId) {
        var p = e.lastEventId.split(".");
        if (cursor) { cursor.after = p[0]; cursor.n = p[1]; }
        if (p[2]) { since = p[2]; }
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
    url += "&since=" + encodeURIComponent(since);
    es = new EventSource(url);
    es.addEventListener("run", handler(function (d) { enqueue("run", d); }));
    es.addEventListener("task", handler(function (d) { enqueue("task", d); }));
    es.addEventListener("group", handler(function (d) { enqueue("group", d); }));
    es.addEventListener("log", handler(onLog));
    es.addEventListener("end", handler(function (d) { enqueue("run", d); done = true; close(); }));
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
      ["graph-wrap", "timeline"].forEach(function (id) {
        var a = document.getElementById(id), b = doc.getElementById(id);
        if (a && b) {
          a.replaceChildren.apply(a, Array.from(b.childNodes));
          Array.from(b.attributes).forEach(function (at) { a.setAttribute(at.name, at.value); });
          if (!b.hasAttribute("data-open")) { a.removeAttribute("data-open"); }
        }
      });
      layoutTimeline();
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
