// Reeve UI: live updates of a run's page (loaded by the run page only).
// The browser's run pages share one event stream, GET /ui/events, held by
// a leader tab (a Web Lock) that hands each event to the other tabs over
// a BroadcastChannel (see "One stream per browser" below); without those,
// each tab holds its own /ui/runs/{id}/events. A tab wants no events
// while it is hidden. Events update the state badge, the task rows, the
// graph's nodes, the timeline's bars, the mapped tasks' counts and, on
// the logs tab without a search or level filter, append new log lines.
// State changes are applied once per animation frame, the newest per
// task, so a burst of events costs one DOM update. If the stream keeps
// failing, the page's parts are refreshed by polling instead.
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

  // el and badge (the server's state badge's markup) are ui.js's.
  var el = window.reeveUI.el, badge = window.reeveUI.badge;
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
    if (dur && d.duration) {
      dur.textContent = d.duration;
      // A run that starts running ticks (ui.js's reeveTick, where it is).
      if (typeof d.elapsed === "number" && window.reeveTick && !dur.hasAttribute("data-tick")) { window.reeveTick(dur, d.elapsed); }
    }
    if (d.finished) {
      var cancel = document.getElementById("cancel");
      if (cancel && cancel.form) { cancel.form.remove(); }
      if (d.retry) { retryForm(); }
    }
  }
  // retryForm adds the Retry from failed button, as the page has it, for
  // a user whose role may act (the header's data-can-act).
  function retryForm() {
    var csrf = document.querySelector('input[name="csrf"]');
    if (!head.hasAttribute("data-can-act") || !csrf || document.getElementById("retry")) { return; }
    var f = el("form", "inline-form");
    f.method = "post";
    f.action = "/ui/runs/" + encodeURIComponent(runID) + "/retry";
    f.setAttribute("data-confirm", "Retry this run from its failed tasks? Finished tasks keep their results.");
    var c = el("input");
    c.type = "hidden"; c.name = "csrf"; c.value = csrf.value;
    var b = el("button", "", "Retry from failed");
    b.type = "submit"; b.id = "retry";
    f.appendChild(c);
    f.appendChild(b);
    var rerun = document.getElementById("rerun");
    if (rerun && rerun.form) { head.insertBefore(f, rerun.form); } else { head.appendChild(f); }
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

  // The tab's cursor, as the server writes it: LOGID.N.SINCE.
  function at() { return (cursor ? cursor.after + "." + cursor.n : "0.0") + "." + since; }
  function later(a, b) { return Number(a) > Number(b) ? a : b; }
  // apply applies an event of this tab's run. at is the stream's cursor
  // after it; a log line this tab already has (another tab's stream
  // began further back) is skipped.
  function apply(ev, d, atStr) {
    errors = 0;
    var p = (atStr || "").split(".");
    if (p[2]) { since = later(p[2], since); }
    switch (ev) {
      case "run": case "task": case "group": enqueue(ev, d); break;
      case "log":
        if (!cursor || d.n <= Number(cursor.n)) { return; }
        cursor.after = String(d.id); cursor.n = String(d.n);
        onLog(d);
        break;
      case "end": enqueue("run", d); done = true; stop(); break;
      case "gone": stop(); startPolling(); break;
    }
  }

  // One tab, one stream: where tabs cannot share one (no Web Locks or
  // BroadcastChannel).
  function handler(name) {
    return function (e) {
      var d;
      try { d = JSON.parse(e.data); } catch (err) { return; }
      apply(name, d, e.lastEventId);
    };
  }
  function openOwn() {
    if (es || done || pollTimer) { return; }
    var url = "/ui/runs/" + encodeURIComponent(runID) + "/events";
    url += cursor ? "?after=" + encodeURIComponent(cursor.after) + "&n=" + encodeURIComponent(cursor.n) : "?logs=0";
    url += "&since=" + encodeURIComponent(since);
    es = new EventSource(url);
    ["run", "task", "group", "log", "end"].forEach(function (name) { es.addEventListener(name, handler(name)); });
    es.onerror = function () {
      errors++;
      // EventSource retries by itself; a closed one (a 401, a 404) or
      // one that keeps failing gives way to polling the page.
      if (es && (es.readyState === EventSource.CLOSED || errors >= 3)) { closeOwn(); startPolling(); }
    };
  }
  function closeOwn() {
    if (es) { es.close(); es = null; }
  }

  // One stream per browser. Browsers open at most 6 connections to a
  // host over HTTP/1.1, so a stream per tab would starve a 7th tab. The
  // tab holding the Web Lock "reeve-live" leads: it holds one stream,
  // GET /ui/events, of every run its tabs want, and hands each event to
  // them over the BroadcastChannel "reeve-live". A tab says what it wants
  // (its run, whether it shows new log lines, its cursor) with a want
  // message, and bye when it is hidden or goes; the leader reconnects
  // when that changes, from the furthest back cursor of each run (a
  // stream resends only what changed since, and a tab skips lines it
  // has). When the leader goes, or is hidden, the next tab takes the
  // lock and asks the tabs to say again what they want.
  var bc = window.BroadcastChannel && navigator.locks ? new BroadcastChannel("reeve-live") : null;
  var tabID = Math.random().toString(36).slice(2) + Date.now().toString(36);
  var wanting = false, leader = null;
  function post(m) {
    if (leader) { leaderGot(m); }
    if (bc) { bc.postMessage(m); }
  }
  function wantMsg() { return { type: "want", tab: tabID, run: runID, logs: !!cursor, at: at() }; }
  function start() {
    if (!bc) { openOwn(); return; }
    if (done || pollTimer || wanting) { return; }
    wanting = true;
    post(wantMsg());
  }
  function stop() {
    if (!bc) { closeOwn(); return; }
    if (!wanting) { return; }
    wanting = false;
    post({ type: "bye", tab: tabID });
  }
  if (bc) {
    bc.onmessage = function (e) {
      var m = e.data || {};
      if (m.type === "ev") {
        if (m.run === runID && wanting) { apply(m.ev, m.d, m.at); }
      } else if (m.type === "hello") {
        if (wanting) { bc.postMessage(wantMsg()); }
      } else if (m.type === "fail") {
        if (wanting) { stop(); startPolling(); }
      } else if (leader) {
        leaderGot(m);
      }
    };
  }
  function lead() {
    navigator.locks.request("reeve-live", function () {
      return new Promise(function (release) {
        leader = { wants: new Map(), at: new Map(), es: null, timer: null, errors: 0, failed: false, release: release };
        bc.postMessage({ type: "hello" });
        if (wanting) { leaderGot(wantMsg()); }
      });
    });
  }
  // abdicate lets another tab lead (a hidden tab's timers are slowed) and
  // queues for the lock again.
  function abdicate() {
    if (!leader) { return; }
    var l = leader;
    leader = null;
    window.clearTimeout(l.timer);
    if (l.es) { l.es.close(); }
    l.release();
    lead();
  }
  function runCursor(run) {
    var c = leader.at.get(run);
    if (!c) { c = { after: null, n: null, since: null }; leader.at.set(run, c); }
    return c;
  }
  function leaderGot(m) {
    var l = leader;
    if (m.type === "want") {
      if (l.failed) { // the stream failed: every tab polls its page
        if (m.tab === tabID) { stop(); startPolling(); } else { bc.postMessage({ type: "fail" }); }
        return;
      }
      l.wants.set(m.tab, m);
      var p = m.at.split("."), c = runCursor(m.run);
      if (c.since === null || Number(p[2]) < Number(c.since)) { c.since = p[2]; }
      if (m.logs && (c.after === null || Number(p[0]) < Number(c.after))) { c.after = p[0]; c.n = p[1]; }
      // The stream open now may be past the cursor: none of its events
      // may move it until the new one is open.
      if (l.es) { l.es.close(); l.es = null; }
      reconnect(50);
    } else if (m.type === "bye") {
      if (l.wants.delete(m.tab)) { reconnect(50); }
    }
  }
  function reconnect(ms) {
    var l = leader;
    if (!l || l.failed) { return; }
    window.clearTimeout(l.timer);
    l.timer = window.setTimeout(connect, ms);
  }
  function connect() {
    var l = leader;
    if (!l) { return; }
    if (l.es) { l.es.close(); l.es = null; }
    var runs = new Map();
    l.wants.forEach(function (w) { runs.set(w.run, runs.get(w.run) || w.logs); });
    if (runs.size === 0) { return; }
    var q = [];
    runs.forEach(function (logs, run) {
      var c = runCursor(run);
      q.push("run=" + encodeURIComponent(run) + "&at=" + (c.after || "0") + "." + (c.n || "0") + "." + (c.since || "0") + "&logs=" + (logs ? "1" : "0"));
    });
    var s = l.es = new EventSource("/ui/events?" + q.join("&"));
    ["run", "task", "group", "log", "end", "cursor", "gone"].forEach(function (name) {
      s.addEventListener(name, function (e) {
        var m;
        try { m = JSON.parse(e.data); } catch (err) { return; }
        l.errors = 0;
        var c = runCursor(m.run), p = (m.at || "").split(".");
        if (p[2]) { c.since = p[2]; }
        if (name === "log") { c.after = p[0]; c.n = p[1]; }
        if (name === "end" || name === "gone") {
          l.at.delete(m.run);
          l.wants.forEach(function (w, tab) { if (w.run === m.run) { l.wants.delete(tab); } });
        }
        var msg = { type: "ev", ev: name, run: m.run, at: m.at, d: m.d };
        bc.postMessage(msg);
        if (m.run === runID && wanting) { apply(name, m.d, m.at); }
      });
    });
    s.onerror = function () {
      if (s !== l.es) { return; }
      // A closed stream (a 401, a 404) or one that keeps failing gives
      // way to every tab polling its page; one that ended (every 20 s,
      // or when its runs finished) is opened again from the newest
      // cursors.
      var fatal = s.readyState === EventSource.CLOSED;
      l.errors++;
      s.close();
      l.es = null;
      if (fatal || l.errors >= 3) {
        l.failed = true;
        bc.postMessage({ type: "fail" });
        if (wanting) { stop(); startPolling(); }
        return;
      }
      reconnect(2000);
    };
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
    if (document.hidden) { stop(); abdicate(); } else { start(); }
  });
  window.addEventListener("pagehide", function () { stop(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted && !document.hidden) { start(); } });
  if (bc) { lead(); }
  if (!document.hidden) { start(); }
})();
