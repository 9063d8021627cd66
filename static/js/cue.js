/* Host cue screen: show the connection state; a tap on a cue sends {ack: id} (ws-send on the cue). */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("cue-root");
    root.addEventListener("htmx:wsOpen", function () { document.body.classList.add("ws-open"); document.body.classList.remove("ws-closed"); });
    root.addEventListener("htmx:wsClose", function () { document.body.classList.remove("ws-open"); document.body.classList.add("ws-closed"); });
    root.addEventListener("htmx:wsAfterMessage", function () {
      var first = document.querySelector("#cues li:not(.acked)");
      if (first) { first.classList.add("new"); setTimeout(function () { first.classList.remove("new"); }, 1500); }
    });
  });
})();
