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
    // Fragments pushed to this viewer (e.g. a new offer) land in the hidden inbox; each moves where its
    // data-into says, unless an element with its id is already on the page (a push and a reload, or the
    // same push twice, show one card).
    document.body.addEventListener("htmx:oobAfterSwap", function (event) {
      if (!event.detail.target || event.detail.target.id !== "viewer-inbox") return;
      var inbox = document.getElementById("viewer-inbox");  // (detail.target is the element swapped out)
      Array.prototype.slice.call(inbox.children).forEach(function (item) {
        var into = item.dataset.into && document.querySelector(item.dataset.into);
        if (!into || (item.id && document.querySelectorAll("#" + CSS.escape(item.id)).length > 1)) { item.remove(); return; }
        into.appendChild(item);
        htmx.process(item);
      });
    });
    // One notice per key: the same news from the page and from the socket is shown once.
    var notices = document.getElementById("notices");
    function dedupeNotices() {
      var seen = {};
      Array.prototype.slice.call(notices.querySelectorAll("li[data-key]")).reverse().forEach(function (li) {
        if (seen[li.dataset.key]) li.remove(); else seen[li.dataset.key] = true;
      });
    }
    if (notices) { dedupeNotices(); new MutationObserver(dedupeNotices).observe(notices, {childList: true}); }
    // Buttons that answer JSON ({ok, message}): the press shows at once, the server's answer replaces it.
    document.body.addEventListener("htmx:beforeRequest", function (event) {
      var button = event.detail.elt;
      if (!button.matches || !button.matches("[data-answers-json] [hx-post]")) return;
      var card = button.closest("[data-answers-json]");
      button.dataset.label = button.dataset.label || button.textContent;
      button.disabled = true;
      button.textContent = button.dataset.pending || button.textContent;
      card.classList.add("pending");
      setStatus(card, "", "");
    });
    document.body.addEventListener("htmx:afterRequest", function (event) {
      var button = event.detail.elt;
      // (htmx repeats the event on the nearest ancestor still on the page once the button is replaced)
      if (!button.matches || !button.matches("[data-answers-json] [hx-post]")) return;
      var card = button.closest("[data-answers-json]");
      card.classList.remove("pending");
      var answer = {};
      try { answer = JSON.parse(event.detail.xhr.responseText || "{}"); } catch (e) { answer = {}; }
      if (event.detail.successful && answer.ok) {
        var done = document.createElement("span");
        done.className = "muted done-label";
        done.textContent = button.dataset.done || button.dataset.label;
        button.replaceWith(done);
        card.classList.add("done");
        setStatus(card, answer.message || "", "ok");
      } else {
        button.disabled = false;
        button.textContent = button.dataset.label;
        setStatus(card, answer.message || card.dataset.failed || "", "refused");
      }
    });
    function setStatus(card, text, kind) {
      var status = card.querySelector(".offer-status");
      if (!status) return;
      status.textContent = text;
      status.className = "offer-status" + (kind ? " " + kind : "");
    }
    var list = document.getElementById("chat-list");
    if (list) {
      document.body.addEventListener("htmx:wsAfterMessage", function () {
        list.scrollTop = list.scrollHeight;
        while (list.children.length > 200) list.firstElementChild.remove();
      });
    }
  });
})();
