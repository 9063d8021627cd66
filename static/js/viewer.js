/* Viewer page: play the program over WHEP, unmute on a tap, keep the chat scrolled. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var video = document.getElementById("program");
    var unmute = document.getElementById("unmute");
    if (unmute) unmute.addEventListener("click", function () { video.muted = false; video.play(); unmute.hidden = true; });
    function play(attempt) {
      if (!window.ControlroomWebRTC || !video) return;
      ControlroomWebRTC.playWhep(video, video.dataset.whep).then(function (session) {
        video.dataset.playing = "1";
        session.pc.addEventListener("connectionstatechange", function () {
          if (["failed", "closed"].indexOf(session.pc.connectionState) >= 0) { session.close(); setTimeout(function () { play(0); }, 2000); }
        });
      }).catch(function () { setTimeout(function () { play(attempt + 1); }, Math.min(10000, 1000 * (attempt + 1))); });
    }
    play(0);
    // The server nudges when an offer opens or closes: reload the panels, spread over ~2 s so a
    // room of viewers does not hit the server in the same millisecond.
    document.body.addEventListener("htmx:oobAfterSwap", function (event) {
      if (!event.detail.target || event.detail.target.id !== "viewer-panels-nudge") return;
      document.querySelectorAll(".viewer-panel").forEach(function (panel) {
        setTimeout(function () { htmx.trigger(panel, "panel-refresh"); }, Math.random() * 2000);
      });
    });
    var list = document.getElementById("chat-list");
    if (list) {
      document.body.addEventListener("htmx:wsAfterMessage", function () {
        list.scrollTop = list.scrollHeight;
        while (list.children.length > 200) list.firstElementChild.remove();
      });
    }
  });
})();
