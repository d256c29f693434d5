// Reeve UI: small enhancements only; every page works without this file.
(function () {
  "use strict";
  // Helpers the page scripts (live.js, runs.js; loaded after this file)
  // share: el makes an element, badge the server's state badge's markup
  // from a state's {state, class, icon}.
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
  window.reeveUI = { el: el, badge: badge };

  // Forms with data-confirm ask first.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });

  // ---- Keyboard shortcuts (the ? dialog lists them). None acts while
  // the user types in a field, or with Ctrl, Alt or Meta held.
  //   /      focus the page's search field (or its filter form's first field)
  //   j / k  move a visible selection down / up the rows of the page's
  //          list tables (table.grid: runs, flows, agents, schedules, tasks...)
  //   Enter  open the selected row's first link
  //   ?      open the shortcuts dialog (Esc or its Close button closes it)
  function typing(t) {
    if (!t || !t.tagName) { return false; }
    var n = t.tagName;
    return n === "INPUT" || n === "SELECT" || n === "TEXTAREA" || t.isContentEditable;
  }
  // rows are the selectable rows: the visible body rows of the main
  // area's list tables, but not a table's "nothing here" row.
  function rows() {
    var all = document.querySelectorAll("main table.grid > tbody > tr");
    var out = [];
    for (var i = 0; i < all.length; i++) {
      var r = all[i];
      if (r.cells.length === 1 && r.cells[0].colSpan > 1) { continue; }
      if (r.offsetParent === null) { continue; }
      out.push(r);
    }
    return out;
  }
  function selected() { return document.querySelector("main tr.kb-selected"); }
  function select(r) {
    var old = selected();
    if (old) { old.classList.remove("kb-selected"); old.removeAttribute("aria-current"); }
    if (!r) { return; }
    r.classList.add("kb-selected");
    r.setAttribute("aria-current", "true");
    r.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    var list = rows();
    if (list.length === 0) { return; }
    var i = list.indexOf(selected());
    if (i < 0) { i = step > 0 ? 0 : list.length - 1; } else { i = Math.min(list.length - 1, Math.max(0, i + step)); }
    select(list[i]);
  }
  function dialog() { return document.getElementById("shortcuts"); }
  function openHelp() {
    var d = dialog();
    if (d && !d.open && d.showModal) { d.showModal(); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || typing(e.target)) { return; }
    var d = dialog();
    if (d && d.open) { return; } // the dialog handles Esc itself
    switch (e.key) {
      case "/":
        var f = document.querySelector("[data-search]") || document.querySelector("main form[role=search] input:not([type=hidden]), main form[role=search] select");
        if (f) { e.preventDefault(); f.focus(); }
        break;
      case "j":
        e.preventDefault(); move(1);
        break;
      case "k":
        e.preventDefault(); move(-1);
        break;
      case "?":
        e.preventDefault(); openHelp();
        break;
      case "Enter":
        // Enter on a link, button or summary does its own thing.
        if (e.target.closest && e.target.closest("a, button, summary, [tabindex]")) { return; }
        var r = selected();
        var a = r && r.querySelector("a[href]");
        if (a) { e.preventDefault(); a.click(); }
        break;
    }
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
  // parseDuration reads a duration as fmtDuration writes it, or null.
  function parseDuration(t) {
    var m;
    if ((m = /^(\d+)ms$/.exec(t))) { return Number(m[1]); }
    if ((m = /^(\d+(?:\.\d+)?)s$/.exec(t))) { return Number(m[1]) * 1000; }
    if ((m = /^(\d+)m (\d+)s$/.exec(t))) { return (Number(m[1]) * 60 + Number(m[2])) * 1000; }
    if ((m = /^(\d+)h (\d+)m$/.exec(t))) { return (Number(m[1]) * 60 + Number(m[2])) * 60000; }
    return null;
  }
  function tick() {
    // A run that started while the page was open: its badge now says it
    // runs and a live update wrote its duration, which ticks from there.
    var idle = document.querySelectorAll("[data-tick-while]:not([data-tick])");
    for (var j = 0; j < idle.length; j++) {
      var ms = stillRuns(idle[j]) ? parseDuration(idle[j].textContent.trim()) : null;
      if (ms !== null) { window.reeveTick(idle[j], ms); }
    }
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

  document.addEventListener("DOMContentLoaded", function () {
    // The preferences form sends the browser's own zone, which "local" means.
    var b = document.getElementById("browser_tz");
    if (b && window.Intl) {
      try { b.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { /* no zone: the server's */ }
    }
    // The shortcuts dialog: a footer button opens it (shown only with
    // JavaScript, which the keys need), Close and Esc close it.
    var open = document.getElementById("shortcuts-open");
    var close = document.getElementById("shortcuts-close");
    var d = dialog();
    if (open && d && d.showModal) {
      open.hidden = false;
      open.addEventListener("click", openHelp);
    }
    if (close && d) { close.addEventListener("click", function () { d.close(); }); }
  });
})();
