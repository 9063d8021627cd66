/* The alert sidebar on every page: the severity filter (kept per browser), and — on pages without a wall,
 * where the sidebar holds its own /ws/alerts/ socket — confirming applied frames (the hub's flow control). */
(function () {
  "use strict";
  var RANK = { info: 0, warning: 1, critical: 2 };
  var KEY = "controlroom.alertSeverity";

  function applySeverity() {
    var select = document.getElementById("alert-severity");
    if (!select) return;
    var min = RANK[select.value] || 0;
    document.querySelectorAll("#alert-triage [data-severity], #alert-list > li").forEach(function (el) {
      var sev = el.dataset.severity || (el.classList.contains("critical") ? "critical" : el.classList.contains("info") ? "info" : "warning");
      el.hidden = (RANK[sev] || 0) < min;
    });
  }

  var lastSeq = 0, lastReported = 0;
  function feedSocket(feed) {
    var data = feed && feed["htmx-internal-data"];
    return data && data.webSocket && data.webSocket.socket;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("alert-severity");
    if (select) {
      try { select.value = localStorage.getItem(KEY) || "info"; } catch (e) { /* private mode */ }
      select.addEventListener("change", function () {
        try { localStorage.setItem(KEY, select.value); } catch (e) { /* private mode */ }
        applySeverity();
      });
    }
    applySeverity();
    document.body.addEventListener("htmx:afterSwap", applySeverity);
    document.body.addEventListener("htmx:oobAfterSwap", applySeverity);
    document.body.addEventListener("htmx:wsAfterMessage", applySeverity);

    var feed = document.getElementById("alert-feed");
    if (!feed || !feed.hasAttribute("ws-connect")) return;
    feed.addEventListener("htmx:wsOpen", function (evt) {
      if (evt.target !== feed) return;
      lastSeq = 0; lastReported = 0; document.body.classList.add("alerts-open");
    });
    feed.addEventListener("htmx:wsClose", function (evt) {
      if (evt.target === feed) document.body.classList.remove("alerts-open");
    });
    feed.addEventListener("htmx:wsAfterMessage", function (evt) {
      if (evt.target !== feed) return;
      var seqEl = document.getElementById("wall-seq");
      lastSeq = seqEl ? parseInt(seqEl.dataset.seq || "0", 10) : lastSeq;
    });
    setInterval(function () {
      var socket = feedSocket(feed);
      if (!socket || socket.readyState !== 1 || lastSeq === lastReported) return;
      socket.send(JSON.stringify({ seen: lastSeq }));
      lastReported = lastSeq;
    }, 1000);
  });
})();
