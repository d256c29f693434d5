// Reeve UI: the runs list (loaded by /ui/runs only). Every few seconds
// while the tab is visible it asks GET /ui/runs/new (the table's
// data-poll, with the page's filter and cursor) how many runs matching the
// filter were created since the page was read, and shows them behind the
// "N new runs — show" banner on the first page instead of pushing the
// rows down; the banner's link reloads the first page. The same answer
// updates the visible rows' state badges, durations and task counts in
// place. Without this script the page is the same, without updates.
(function () {
  "use strict";
  // The URL is the state: a page the Back button restores from the
  // back-forward cache shows the filters of its URL, not the ones the
  // user had changed before leaving it.
  window.addEventListener("pageshow", function (e) {
    var form = document.getElementById("filters");
    if (e.persisted && form) { form.reset(); }
  });
  var table = document.getElementById("runs");
  if (!table || !window.fetch) { return; }
  var poll = table.getAttribute("data-poll");
  var since = table.getAttribute("data-since");
  var banner = document.getElementById("new-runs");
  var every = 3000, timer = null, busy = false, stopped = false;

  // el and badge (the server's state badge's markup) are ui.js's.
  var el = window.reeveUI.el, badge = window.reeveUI.badge;
  function tasks(list) {
    var f = document.createDocumentFragment();
    list.forEach(function (t) {
      var s = el("span", "tc state-" + t.class);
      s.title = t.n + " " + t.state;
      var i = el("span", "", t.icon);
      i.setAttribute("aria-hidden", "true");
      s.appendChild(i);
      s.appendChild(document.createTextNode(String(t.n)));
      s.appendChild(el("span", "sr", " " + t.state));
      f.appendChild(s);
      f.appendChild(document.createTextNode(" "));
    });
    return f;
  }

  function update(rows) {
    var byID = {};
    rows.forEach(function (r) { byID[r.id] = r; });
    var trs = table.querySelectorAll("tbody tr[data-run]");
    for (var i = 0; i < trs.length; i++) {
      var tr = trs[i], d = byID[tr.getAttribute("data-run")];
      if (!d) { continue; }
      var st = tr.querySelector(".c-state"), dur = tr.querySelector(".c-dur"), tc = tr.querySelector(".c-tasks");
      var cur = st && st.querySelector(".state");
      if (st && (!cur || cur.getAttribute("data-state") !== d.state)) { st.replaceChildren(badge(d)); }
      if (dur) {
        if (d.elapsed !== undefined && d.elapsed !== null) {
          if (!dur.hasAttribute("data-tick") && window.reeveTick) { dur.textContent = d.duration; window.reeveTick(dur, d.elapsed); }
        } else {
          dur.removeAttribute("data-tick");
          dur.textContent = d.duration;
        }
      }
      if (tc) {
        var key = JSON.stringify(d.tasks);
        if (tc.getAttribute("data-key") !== key) {
          tc.setAttribute("data-key", key);
          tc.replaceChildren(tasks(d.tasks));
        }
      }
    }
  }

  function show(n) {
    if (!banner) { return; }
    if (n <= 0) { banner.hidden = true; return; }
    var a = banner.querySelector("a");
    a.textContent = n + " new run" + (n === 1 ? "" : "s") + " — show";
    banner.hidden = false;
  }

  function check() {
    timer = null;
    if (stopped || busy || document.hidden) { return; }
    busy = true;
    fetch(poll + "&since=" + encodeURIComponent(since), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (res) {
        if (res.status === 401) { stopped = true; return null; }
        if (!res.ok) { return null; }
        return res.json();
      })
      .then(function (d) {
        if (!d) { return; }
        if (table.hasAttribute("data-first")) { show(d.new); }
        update(d.rows || []);
      })
      .catch(function () { /* the server is away: try again later */ })
      .then(function () { busy = false; schedule(); });
  }
  function schedule() {
    if (!stopped && timer === null && !document.hidden) { timer = setTimeout(check, every); }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (timer !== null) { clearTimeout(timer); timer = null; }
    } else {
      check();
    }
  });
  schedule();
})();
