// Reeve UI: line links on a run's logs tab (loaded by the logs tab only).
// Clicking a line number selects the line and puts #L120 in the URL;
// shift-clicking another selects the range between them, #L120-L140. A
// URL with such a hash highlights the range and scrolls to its first line.
// Without this script #L120 still works, by the browser's :target.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log) { return; }
  var tip = document.getElementById("log-tip");
  if (tip) { tip.hidden = false; }
  var range = null; // {from, to}: the selected line numbers
  var anchor = 0;   // the line a shift-click extends from

  // parse reads "#L120" or "#L120-L140" (or "#L140-L120").
  function parse(hash) {
    var m = /^#L(\d+)(?:-L?(\d+))?$/.exec(hash || "");
    if (!m) { return null; }
    var a = parseInt(m[1], 10), b = m[2] ? parseInt(m[2], 10) : a;
    return { from: Math.min(a, b), to: Math.max(a, b) };
  }
  function lineOf(li) {
    return li && li.id && li.id.charAt(0) === "L" ? parseInt(li.id.slice(1), 10) : NaN;
  }
  function inRange(li) {
    var n = lineOf(li);
    return range !== null && n >= range.from && n <= range.to;
  }

  // mark highlights the lines of the range (the page may hold only some
  // of them: a search keeps the lines that match, numbered as in the
  // whole log) and returns the first one in the page.
  function mark() {
    var old = log.querySelectorAll("li.sel");
    for (var i = 0; i < old.length; i++) { old[i].classList.remove("sel"); }
    log.classList.toggle("ranged", range !== null);
    if (range === null) { return null; }
    var first = null;
    if (range.to - range.from < 2000) { // by id: no walk over a long log
      for (var n = range.from; n <= range.to; n++) {
        var li = document.getElementById("L" + n);
        if (li && li.parentNode === log) {
          li.classList.add("sel");
          first = first || li;
        }
      }
      return first;
    }
    var items = log.children;
    for (var j = 0; j < items.length; j++) {
      if (inRange(items[j])) {
        items[j].classList.add("sel");
        first = first || items[j];
      }
    }
    return first;
  }

  // after is the first line in the page numbered n or more (a filtered
  // page may not hold the range's lines: scroll to where they would be).
  function after(n) {
    var items = log.children;
    for (var i = 0; i < items.length; i++) {
      if (lineOf(items[i]) >= n) { return items[i]; }
    }
    return null;
  }
  function fromHash(scroll) {
    range = parse(location.hash);
    anchor = range ? range.from : 0;
    var first = mark() || (range && after(range.from));
    if (scroll && first) { first.scrollIntoView({ block: "start" }); }
  }

  log.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.ln");
    if (!a || e.ctrlKey || e.metaKey || e.altKey || e.button !== 0) { return; }
    var n = lineOf(a.parentNode);
    if (isNaN(n)) { return; }
    e.preventDefault();
    if (e.shiftKey && anchor) {
      range = { from: Math.min(anchor, n), to: Math.max(anchor, n) };
      // A shift-click selects text as well: drop it.
      if (window.getSelection) { window.getSelection().removeAllRanges(); }
    } else {
      anchor = n;
      range = { from: n, to: n };
    }
    var hash = "#L" + range.from + (range.to !== range.from ? "-L" + range.to : "");
    history.replaceState(history.state, "", location.pathname + location.search + hash);
    mark();
  });

  // A line appended live (static/live.js) inside the range is highlighted.
  if (window.MutationObserver) {
    new MutationObserver(function (records) {
      if (range === null) { return; }
      records.forEach(function (r) {
        r.addedNodes.forEach(function (li) {
          if (li.nodeType === 1 && inRange(li)) { li.classList.add("sel"); }
        });
      });
    }).observe(log, { childList: true });
  }

  window.addEventListener("hashchange", function () { fromHash(true); });
  fromHash(true);
})();
