/* The wall: stamps actions with nonce + issue time, shows pending -> done/failed (or "not sent — retry" while
 * the socket is down), checks frame sequence numbers and confirms them (flow control), reconnects with backoff
 * to a fresh snapshot, filters tiles (their order stays fixed) and lists rooms needing attention, plays alert sounds, starts previews, keyboard shortcuts.
 * Other sockets on the page (e.g. a room panel's) bubble their htmx:ws* events through #wall: only the wall's
 * own socket counts here. */
(function () {
  "use strict";
  var wall = null;
  var lastSeq = 0;
  var RESULT_TIMEOUT_MS = 10000;  // an action with no result by then is shown as unknown
  var reconnectTries = 0;
  var reconnectTimer = null;

  function wrapper() {
    var data = wall && wall["htmx-internal-data"];
    return data && data.webSocket;
  }

  function wallSocket() {
    var w = wrapper();
    return w && w.socket;
  }

  function text(name, fallback) {
    return (wall && wall.dataset[name]) || fallback;
  }

  // A fresh socket (the server sends a full snapshot on connect). Backoff with full jitter, up to 10 s.
  function reconnect(immediately) {
    var w = wrapper();
    if (!w || reconnectTimer) return;
    var delay = immediately ? 0 : Math.random() * Math.min(10000, 500 * Math.pow(2, reconnectTries));
    reconnectTries += 1;
    reconnectTimer = setTimeout(function () { reconnectTimer = null; w.init(); }, delay);
  }

  function settle(ack, outcome, message) {
    ack.className = "ack " + outcome;
    ack.textContent = message;
    var btn = document.querySelector('button[data-nonce="' + ack.dataset.nonce + '"]');
    if (btn) { btn.classList.remove("pending"); btn.removeAttribute("data-nonce"); }
  }

  // Sent, but the socket closed (or nothing came back in time): the server may or may not have done it.
  function unknownResults(olderThan) {
    document.querySelectorAll(".ack.pending[data-nonce]").forEach(function (ack) {
      if (olderThan && Date.now() - parseInt(ack.dataset.sentAt || "0", 10) < olderThan) return;
      settle(ack, "failed", "? " + ack.dataset.label + ":" + text("msgLost", "未收到结果,请查看操作记录"));
    });
  }

  // Not sent (socket down): say so, with a button that sends it again (a new nonce and issue time).
  function notSent(elt, acks, label) {
    if (!acks) { window.alert(text("msgUnsent", "未发送") + ":" + label); return; }
    var span = document.createElement("span");
    span.className = "ack failed unsent";
    span.textContent = "✗ " + label + ":" + text("msgUnsent", "未发送") + " — ";
    var retry = document.createElement("button");
    retry.type = "button"; retry.className = "link retry"; retry.textContent = text("msgRetry", "重试");
    retry.addEventListener("click", function () {
      span.remove();
      if (elt.tagName === "FORM") elt.requestSubmit(); else elt.click();
    });
    span.appendChild(retry);
    acks.prepend(span);
    while (acks.children.length > 4) acks.lastElementChild.remove();
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "n" + Date.now().toString(36) + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }

  // Every action message carries a fresh nonce and its issue time; the server refuses replays and stale ones.
  document.addEventListener("htmx:wsConfigSend", function (evt) {
    var elt = evt.detail.elt || evt.target;
    if (!wall || !wall.contains(elt)) return;
    var btn = elt.closest("button, form");
    var trigger = evt.detail.triggeringEvent;
    if (btn && btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) { evt.preventDefault(); return; }
    var tile = elt.closest(".tile, .room-detail");
    var acks = tile && tile.querySelector(".tile-acks");
    var label = btn ? ((btn.tagName === "FORM" ? (btn.querySelector("button") || btn) : btn).textContent || "").trim().slice(0, 20) : "";
    var socket = wallSocket();
    if (!socket || socket.readyState !== 1) {
      // htmx would queue it and send it after a reconnect, where the server refuses it as stale: say it now
      evt.preventDefault();
      if (trigger && trigger.type === "submit") trigger.preventDefault();
      notSent(btn || elt, acks, label);
      reconnect(true);
      return;
    }
    var nonce = uuid();
    evt.detail.parameters.nonce = nonce;
    evt.detail.parameters.issued_at = Date.now();
    delete evt.detail.headers;
    if (btn && btn.tagName === "BUTTON") { btn.classList.add("pending"); btn.dataset.nonce = nonce; }
    if (btn && btn.tagName === "FORM") { var b = btn.querySelector("button"); if (b) { b.classList.add("pending"); b.dataset.nonce = nonce; } }
    if (acks) {
      var span = document.createElement("span");
      span.id = "ack-" + nonce; span.className = "ack pending"; span.textContent = "… " + label;
      span.dataset.nonce = nonce; span.dataset.label = label; span.dataset.sentAt = String(Date.now());
      acks.prepend(span);
      while (acks.children.length > 4) acks.lastElementChild.remove();
    }
  });

  function afterMessage(evt) {
    if (evt.target !== wall) return;  // another socket's message (a room panel inside the page)
    // Sequence numbers: a gap means a lost frame -> reconnect, which brings a full snapshot.
    var seqEl = document.getElementById("wall-seq");
    var seq = seqEl ? parseInt(seqEl.dataset.seq || "0", 10) : 0;
    if (seq === 1) lastSeq = 0;
    if (lastSeq && seq !== lastSeq + 1) {
      console.warn("wall frame gap", lastSeq, seq);
      reconnect(true);
    }
    lastSeq = seq;
    document.querySelectorAll(".ack[data-outcome]").forEach(function (ack) {
      var btn = document.querySelector('button[data-nonce="' + ack.dataset.nonce + '"]');
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
    var socket = wallSocket();
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

  // The grid keeps its order (by name or the operator's own): a room's state never moves its tile. Rooms
  // needing attention are listed as references in the strip above, whose height is reserved.
  function applyFilter() {
    var grid = document.getElementById("wall-grid");
    if (!grid) return;
    var status = (document.getElementById("filter-status") || {}).value || "";
    var merchant = (document.getElementById("filter-merchant") || {}).value || "";
    var tiles = Array.prototype.slice.call(grid.querySelectorAll(":scope > .tile"));
    tiles.forEach(function (tile) {
      var live = tile.querySelector(".tile-live");
      var show = (!status || (live && live.dataset.status === status)) && (!merchant || tile.dataset.merchant === merchant);
      tile.hidden = !show;
    });
    attentionStrip(tiles);
  }

  function attentionStrip(tiles) {
    var strip = document.getElementById("attention-strip");
    if (!strip) return;
    var chips = strip.querySelector(".attention-chips");
    var wanted = [];
    tiles.forEach(function (tile) {
      var live = tile.querySelector(".tile-live");
      var state = live && live.dataset.status;
      var alerts = tile.querySelector(".tile-head .badge.warn");
      if (state === "down" || state === "degraded") wanted.push([tile, state, strip.dataset["label" + (state === "down" ? "Down" : "Degraded")]]);
      else if (alerts) wanted.push([tile, "alerts", alerts.textContent.trim()]);
    });
    var signature = wanted.map(function (w) { return w[0].dataset.slug + ":" + w[1] + ":" + w[2]; }).join("|");
    if (signature === chips.dataset.signature) return;
    chips.dataset.signature = signature;
    chips.textContent = "";
    if (!wanted.length) { var ok = document.createElement("span"); ok.className = "muted"; ok.textContent = strip.dataset.empty; chips.appendChild(ok); }
    wanted.forEach(function (w) {
      var a = document.createElement("a");
      a.className = "attention-chip state-" + w[1];
      a.href = "#tile-" + w[0].dataset.slug;
      a.dataset.slug = w[0].dataset.slug;
      a.textContent = (w[0].dataset.name || w[0].dataset.slug) + " · " + w[2];
      a.addEventListener("click", function (evt) {
        evt.preventDefault();
        w[0].scrollIntoView({ block: "nearest" });
        w[0].focus({ preventScroll: true });
      });
      chips.appendChild(a);
    });
  }

  // Custom order: drag a tile onto another; the order is saved as the operator's preference.
  var dragged = null;
  function saveOrder(grid) {
    var form = document.getElementById("wall-arrangement");
    if (!form) return;
    var slugs = Array.prototype.map.call(grid.querySelectorAll(":scope > .tile"), function (t) { return t.dataset.slug; });
    htmx.ajax("POST", form.getAttribute("hx-post"), { target: "#wall-grid", swap: "outerHTML",
      values: { order: "custom", rooms: slugs } }).then(startPreviews);
  }
  document.addEventListener("dragstart", function (evt) {
    var tile = evt.target.closest && evt.target.closest("#wall-grid[data-order=custom] > .tile");
    if (!tile) return;
    dragged = tile; evt.dataTransfer.effectAllowed = "move";
    try { evt.dataTransfer.setData("text/plain", tile.dataset.slug); } catch (e) { /* old browsers */ }
  });
  document.addEventListener("dragover", function (evt) {
    if (dragged && evt.target.closest && evt.target.closest("#wall-grid > .tile")) evt.preventDefault();
  });
  document.addEventListener("drop", function (evt) {
    var target = dragged && evt.target.closest && evt.target.closest("#wall-grid > .tile");
    if (!target || target === dragged) { dragged = null; return; }
    evt.preventDefault();
    var grid = target.parentNode;
    var tiles = Array.prototype.slice.call(grid.children);
    grid.insertBefore(dragged, tiles.indexOf(dragged) < tiles.indexOf(target) ? target.nextSibling : target);
    dragged = null;
    saveOrder(grid);
  });

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

  // A tile's "more" panel opens over the wall; near the bottom of the screen it opens upwards.
  document.addEventListener("toggle", function (evt) {
    var details = evt.target;
    if (!details.classList || !details.classList.contains("more-actions") || !details.open) return;
    var body = details.querySelector(".more-body");
    details.classList.remove("up");
    var adjust = function () {
      if (body && body.getBoundingClientRect().bottom > window.innerHeight) details.classList.add("up");
    };
    adjust();
    details.addEventListener("htmx:afterSwap", adjust, { once: true });  // the graphs arrived: taller now
  }, true);

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
    ["filter-status", "filter-merchant"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.addEventListener("change", applyFilter);
    });
    wall.addEventListener("htmx:wsAfterMessage", afterMessage);
    wall.addEventListener("htmx:wsOpen", function (evt) {
      if (evt.target !== wall) return;
      lastSeq = 0; lastReported = 0; reconnectTries = 0;
      document.body.classList.add("ws-open"); document.body.classList.remove("ws-closed");
    });
    wall.addEventListener("htmx:wsClose", function (evt) {
      if (evt.target !== wall) return;
      var closed = evt.detail.event && evt.detail.event.target;
      if (closed && closed !== wallSocket()) return;  // the socket a reconnect replaced
      document.body.classList.remove("ws-open"); document.body.classList.add("ws-closed");
      unknownResults(0);
      // htmx reconnects by itself after 1006/1011/1012/1013 only; any other close (the server's 4008 for a
      // dashboard that fell behind, a restart, a proxy) must not leave the page dead.
      if ([1006, 1011, 1012, 1013].indexOf(evt.detail.event && evt.detail.event.code) < 0) reconnect(false);
    });
    setInterval(function () { unknownResults(RESULT_TIMEOUT_MS); }, 1000);
    document.body.addEventListener("htmx:afterSwap", function (evt) {
      var btn = document.querySelector("#mute-toggle button");
      if (btn) wall.dataset.alertsMuted = btn.dataset.muted;
      startPreviews(); applyFilter();  // e.g. the grid re-rendered in another density or order
    });
    startPreviews();
    applyFilter();
    setInterval(reportSeen, 1000);
  });
})();
