// cmg web console: shows each <time datetime="..."> and each chart label marked data-at
// in the viewer's time zone (the server renders UTC and the relative age, kept in
// data-rel), and asks before a form
// marked data-confirm is sent, and reads a file chosen in an <input type=file
// data-fill=ID> into the textarea ID (the analyzer's certificate and key; nothing is sent
// until the form is). Loaded from /ui/static/; no inline script anywhere.
"use strict";
(function () {
  function localize(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      var rel = el.getAttribute("data-rel");
      el.textContent = d.toLocaleString() + (rel ? " (" + rel + ")" : "");
      el.setAttribute("title", el.getAttribute("datetime"));
      el.classList.add("local");
    }
  }
  // Chart labels and tooltips (SVG has no <time>): data-at holds the ISO time, data-fmt
  // how to show it (hm: hour and minute; dhm: day, month, hour and minute; else all),
  // data-after the text that follows it.
  var FORMATS = {
    hm: { hour: "2-digit", minute: "2-digit" },
    dhm: { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" },
  };
  function localizeAt(root) {
    var els = (root || document).querySelectorAll("[data-at]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var d = new Date(el.getAttribute("data-at"));
      if (isNaN(d.getTime())) continue;
      var f = FORMATS[el.getAttribute("data-fmt")];
      el.textContent = (f ? d.toLocaleString([], f) : d.toLocaleString()) + (el.getAttribute("data-after") || "");
      el.classList.add("local");
    }
  }
  document.addEventListener("DOMContentLoaded", function () { localize(document); localizeAt(document); });
  document.addEventListener("htmx:load", function (e) { localize(e.target); localizeAt(e.target); });
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  }, true);
  document.addEventListener("change", function (e) {
    var id = e.target.getAttribute && e.target.getAttribute("data-fill");
    var file = id && e.target.files && e.target.files[0];
    var into = id && document.getElementById(id);
    if (!file || !into) return;
    file.text().then(function (text) { into.value = text; });
  });
})();
