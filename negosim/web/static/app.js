// negosim classroom: live updates by server-sent events, served by this server (no CDN).
(function () {
  "use strict";
  function sliders(root) {
    root.querySelectorAll("input[type=range][data-out]").forEach(function (r) {
      var out = document.getElementById(r.getAttribute("data-out"));
      if (out) { r.addEventListener("input", function () { out.textContent = r.value; }); }
    });
  }
  function refresh(live) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { "X-Partial": "1" } })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        if (!fresh) { return; }
        var active = document.activeElement;
        if (active && live.contains(active) && (active.tagName === "INPUT" || active.tagName === "SELECT")) {
          return; // do not pull a form from under the person typing in it
        }
        live.innerHTML = fresh.innerHTML;
        live.setAttribute("data-updated", String(Date.now()));
        sliders(live);
      });
  }
  function listen(live) {
    var channel = live.getAttribute("data-channel");
    // the channel's version when the server made this page: a change since is refreshed
    var seen = parseInt(live.getAttribute("data-version") || "0", 10);
    var es = new EventSource("/events/" + encodeURIComponent(channel));
    var opened = 0;
    es.onopen = function () {
      opened += 1;
      document.body.removeAttribute("data-offline");
      document.body.setAttribute("data-connects", String(opened)); // reconnections, counted
    };
    es.onerror = function () { document.body.setAttribute("data-offline", "1"); };
    es.onmessage = function (ev) {
      var data = JSON.parse(ev.data);
      var bar = document.getElementById("progress");
      if (data.total && bar) {
        bar.max = data.total; bar.value = data.done;
        var t = document.getElementById("progress-text");
        if (t) { t.textContent = data.done + " / " + data.total; }
      }
      if (data.v !== seen) {
        seen = data.v;
        if (!data.status || data.status === "done" || data.status === "failed") { refresh(live); }
      }
    };
  }
  document.addEventListener("DOMContentLoaded", function () {
    sliders(document);
    var live = document.getElementById("live");
    if (live && live.getAttribute("data-channel") && window.EventSource) { listen(live); }
    document.querySelectorAll("[data-back]").forEach(function (a) {
      a.addEventListener("click", function (e) { e.preventDefault(); history.back(); });
    });
  });
})();
