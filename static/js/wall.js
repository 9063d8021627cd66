/* The wall: stamps actions with nonce + issue time, shows pending -> done/failed, checks frame
 * sequence numbers and confirms them (flow control), filters/sorts tiles, plays alert sounds, starts previews, keyboard shortcuts. */
(function () {
  "use strict";
  var wall = null;
  var lastSeq = 0;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "n" + Date.now().toString(36) + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }

  // Every action message carries a fresh nonce and its issue time; the server refuses replays and stale ones.
  document.addEventListener("htmx:wsConfigSend", function (evt) {
    var elt = evt.detail.elt || evt.target;
    var btn = elt.closest("button, form");
    if (btn && btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) { evt.preventDefault(); return; }
    var nonce = uuid();
    evt.detail.parameters.nonce = nonce;
    evt.detail.parameters.issued_at = Date.now();
    delete evt.detail.headers;
    var tile = elt.closest(".tile, .room-detail");
    var acks = tile && tile.querySelector(".tile-acks");
    if (btn && btn.tagName === "BUTTON") { btn.classList.add("pending"); btn.dataset.nonce = nonce; }
    if (btn && btn.tagName === "FORM") { var b = btn.querySelector("button"); if (b) { b.classList.add("pending"); b.dataset.nonce = nonce; } }
    if (acks) {
      var span = document.createElement("span");
      span.id = "ack-" + nonce; span.className = "ack pending"; span.textContent = "… " + (btn ? (btn.textContent || "").trim().slice(0, 20) : "");
      acks.prepend(span);
      while (acks.children.length > 4) acks.lastElementChild.remove();
    }
  });

  function afterMessage() {
    // Sequence numbers: a gap means a lost frame -> reconnect, which brings a full snapshot.
    var seqEl = document.getElementById("wall-seq");
    var seq = seqEl ? parseInt(seqEl.dataset.seq || "0", 10) : 0;
    if (seq === 1) lastSeq = 0;
    if (lastSeq && seq !== lastSeq + 1) {
      console.warn("wall frame gap", lastSeq, seq);
      var ws = wall && htmx.closest(wall, "[ws-connect]");
      var data = ws && ws["htmx-internal-data"];
      if (data && data.webSocket) data.webSocket.socket.close();
    }
    lastSeq = seq;
    document.querySelectorAll(".ack[data-outcome]").forEach(function (ack) {
      var btn = document.querySelector('[data-nonce="' + ack.dataset.nonce + '"]');
      if (btn) { btn.classList.remove("pending"); btn.removeAttribute("data-nonce"); }
      ack.removeAttribute("data-outcome");
    });
    newAlerts();
    checkRoomSet();
    applyFilter();
  }

  // Flow control: once a second, tell the server the latest frame applied. A tab that stops applying
  // frames (frozen, throttled, on a choked link) stops receiving them; when it catches up it gets a snapshot.
  var lastReported = 0;
  function reportSeen() {
    var ws = wall && htmx.closest(wall, "[ws-connect]");
    var data = ws && ws["htmx-internal-data"];
    var socket = data && data.webSocket && data.webSocket.socket;
    if (!socket || socket.readyState !== 1 || lastSeq === lastReported) return;
    socket.send(JSON.stringify({ seen: lastSeq }));
    lastReported = lastSeq;
  }

  function checkRoomSet() {
    var marker = document.getElementById("wall-rooms");
    if (!marker || !marker.dataset.rooms || !wall || wall.dataset.detail) return;
    var want = marker.dataset.rooms.split(",").filter(Boolean).sort().join(",");
    var have = Array.prototype.map.call(document.querySelectorAll("#wall-grid > .tile"), function (t) { return t.dataset.slug; }).sort().join(",");
    if (want !== have && !checkRoomSet.loading) {
      checkRoomSet.loading = true;
      htmx.ajax("GET", wall.dataset.gridUrl, { target: "#wall-grid", swap: "outerHTML" }).then(function () {
        checkRoomSet.loading = false; startPreviews();
      });
    }
  }

  var audioCtx = null;
  function beep() {
    if (wall && wall.dataset.alertsMuted === "1") return;
    try {
      audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audioCtx.createOscillator(), gain = audioCtx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.15;
      osc.connect(gain); gain.connect(audioCtx.destination);
      osc.start(); osc.stop(audioCtx.currentTime + 0.25);
    } catch (e) { /* no audio device */ }
  }

  function newAlerts() {
    var fresh = document.querySelectorAll("#alert-list li.fresh");
    if (!fresh.length) return;
    fresh.forEach(function (li) {
      li.classList.remove("fresh");
      var tile = document.getElementById("tile-" + li.dataset.room);
      if (tile) { tile.classList.remove("flash"); void tile.offsetWidth; tile.classList.add("flash"); }
    });
    beep();
  }

  function applyFilter() {
    var grid = document.getElementById("wall-grid");
    if (!grid) return;
    var status = (document.getElementById("filter-status") || {}).value || "";
    var merchant = (document.getElementById("filter-merchant") || {}).value || "";
    var byAttention = (document.getElementById("sort-attention") || {}).checked;
    var tiles = Array.prototype.slice.call(grid.querySelectorAll(":scope > .tile"));
    tiles.forEach(function (tile) {
      var live = tile.querySelector(".tile-live");
      var show = (!status || (live && live.dataset.status === status)) && (!merchant || tile.dataset.merchant === merchant);
      tile.hidden = !show;
    });
    if (byAttention) {
      var sorted = tiles.slice().sort(function (a, b) {
        var la = a.querySelector(".tile-live"), lb = b.querySelector(".tile-live");
        return (parseInt(lb && lb.dataset.attention, 10) || 0) - (parseInt(la && la.dataset.attention, 10) || 0);
      });
      // CSS order instead of moving nodes: video previews keep playing.
      sorted.forEach(function (tile, i) { tile.style.order = i; });
    } else {
      tiles.forEach(function (tile) { tile.style.order = ""; });
    }
  }

  // Previews: live muted WHEP for a few rooms; with many rooms a program thumbnail made by the media
  // worker, refreshed every few seconds for the tiles on screen only.
  var players = new Map();
  var THUMBNAIL_REFRESH_MS = 3000;
  function startPreviews() {
    if (!wall) return;
    if (wall.dataset.livePreviews !== "1") {
      if (!startPreviews.thumbnails) { startPreviews.thumbnails = true; refreshThumbnails(); }
      return;
    }
    if (!window.ControlroomWebRTC) return;
    var videos = Array.prototype.slice.call(document.querySelectorAll(".tile-preview video[data-whep]"));
    videos.forEach(function (video) {
      if (players.has(video)) return;
      players.set(video, null);
      ControlroomWebRTC.playWhep(video, video.dataset.whep).then(function (p) { players.set(video, p); })
        .catch(function () { players.delete(video); video.closest(".tile-preview").classList.add("no-preview"); });
    });
  }

  function onScreen(el) {
    var r = el.getBoundingClientRect();
    return r.width > 0 && r.bottom > 0 && r.top < window.innerHeight;
  }

  function refreshThumbnails() {
    if (!document.hidden) {
      document.querySelectorAll(".tile-preview img.snapshot[data-src]").forEach(function (img) {
        var tile = img.closest(".tile");
        if (!tile || tile.hidden || !onScreen(img.parentElement)) return;
        var next = new Image();
        next.onload = function () {
          img.src = next.src; img.hidden = false; img.parentElement.classList.remove("no-preview");
        };
        next.onerror = function () { img.hidden = true; img.parentElement.classList.add("no-preview"); };
        next.src = img.dataset.src + "?t=" + Date.now();
      });
    }
    setTimeout(refreshThumbnails, THUMBNAIL_REFRESH_MS);
  }

  // Keyboard shortcuts act on the focused tile only.
  document.addEventListener("keydown", function (evt) {
    if (evt.ctrlKey || evt.metaKey || evt.altKey) return;
    var tag = (evt.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    var tile = evt.target.closest && evt.target.closest(".tile");
    if (!tile) return;
    var btn = tile.querySelector('button[data-key="' + evt.key.toLowerCase() + '"]');
    if (btn) { evt.preventDefault(); btn.click(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    wall = document.getElementById("wall");
    if (!wall) return;
    ["filter-status", "filter-merchant", "sort-attention"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.addEventListener("change", applyFilter);
    });
    wall.addEventListener("htmx:wsAfterMessage", afterMessage);
    wall.addEventListener("htmx:wsOpen", function () { lastSeq = 0; lastReported = 0; document.body.classList.add("ws-open"); document.body.classList.remove("ws-closed"); });
    wall.addEventListener("htmx:wsClose", function () { document.body.classList.remove("ws-open"); document.body.classList.add("ws-closed"); });
    document.body.addEventListener("htmx:afterSwap", function () {
      var btn = document.querySelector("#mute-toggle button");
      if (btn) wall.dataset.alertsMuted = btn.dataset.muted;
    });
    startPreviews();
    applyFilter();
    setInterval(reportSeen, 1000);
  });
})();
