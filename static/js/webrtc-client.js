/* Browser side of WHIP (publish) and WHEP (play) against the control room's media worker.
 *
 * window.ControlroomWebRTC = {
 *   playWhep(videoEl, whepUrl) -> Promise<{close(), pc}>
 *   publishWhip(mediaStream, whipUrl, token, options?) -> Promise<{close(), pc}>
 * }
 * options (both): {certificates: [RTCCertificate], trickle: bool}; publishWhip also {videoCodec: "VP8"|"H264"}.
 * Default is non-trickle: the offer is sent once ICE gathering finished (no STUN/TURN servers). With
 * trickle the offer goes out at once and candidates follow as PATCH application/trickle-ice-sdpfrag.
 * close() sends DELETE to the session URL the server returned (Location).
 */
(function () {
  "use strict";

  function waitForIceGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      var timer = setTimeout(done, timeoutMs || 2000);
      function done() {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
      function check() { if (pc.iceGatheringState === "complete") done(); }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  function trickleTo(pc, token) {
    // Candidates gathered before the session URL is known are queued, then PATCHed in order.
    var state = { url: null, queue: [], ended: false };
    function send(frag) {
      var headers = { "Content-Type": "application/trickle-ice-sdpfrag" };
      if (token) headers["Authorization"] = "Bearer " + token;
      return fetch(state.url, { method: "PATCH", headers: headers, body: frag, credentials: "same-origin" })
        .catch(function () {});
    }
    pc.addEventListener("icecandidate", function (ev) {
      if (!ev.candidate || !ev.candidate.candidate) return;
      var frag = "a=mid:" + ev.candidate.sdpMid + "\r\na=" + ev.candidate.candidate + "\r\n";
      if (state.url) send(frag); else state.queue.push(frag);
    });
    state.start = function (url) {
      state.url = url;
      var pending = state.queue.splice(0);
      return pending.reduce(function (p, frag) { return p.then(function () { return send(frag); }); },
                            Promise.resolve());
    };
    return state;
  }

  async function exchange(pc, url, token, options) {
    var trickle = options && options.trickle ? trickleTo(pc, token) : null;
    var offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    if (!trickle) await waitForIceGathering(pc, 2000);
    var headers = { "Content-Type": "application/sdp" };
    if (token) headers["Authorization"] = "Bearer " + token;
    var body = trickle ? offer.sdp : pc.localDescription.sdp;
    var resp = await fetch(url, { method: "POST", headers: headers, body: body,
                                  credentials: "same-origin" });
    if (resp.status !== 201) {
      var text = "";
      try { text = await resp.text(); } catch (e) { /* ignore */ }
      pc.close();
      throw new Error("WebRTC " + url + " -> HTTP " + resp.status + ": " + text);
    }
    var location = resp.headers.get("Location");
    var answer = await resp.text();
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    var sessionUrl = location ? new URL(location, new URL(url, window.location.href)).toString() : null;
    if (trickle && sessionUrl) await trickle.start(sessionUrl);
    return {
      pc: pc,
      sessionUrl: sessionUrl,
      close: function () {
        try { pc.close(); } catch (e) { /* already closed */ }
        if (sessionUrl) {
          var h = {};
          if (token) h["Authorization"] = "Bearer " + token;
          return fetch(sessionUrl, { method: "DELETE", headers: h, credentials: "same-origin" })
            .catch(function () {});
        }
        return Promise.resolve();
      },
    };
  }

  function newPeerConnection(options) {
    var config = { iceServers: [] };  // loopback / LAN only: never a public STUN server
    if (options && options.certificates) config.certificates = options.certificates;
    return new RTCPeerConnection(config);
  }

  async function playWhep(videoEl, whepUrl, options) {
    var pc = newPeerConnection(options);
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    var stream = new MediaStream();
    pc.addEventListener("track", function (ev) {
      stream.addTrack(ev.track);
      if (videoEl && videoEl.srcObject !== stream) {
        videoEl.srcObject = stream;
        videoEl.muted = videoEl.muted !== false ? true : false;
        var p = videoEl.play && videoEl.play();
        if (p && p.catch) p.catch(function () {});
      }
    });
    return exchange(pc, whepUrl, null, options);
  }

  async function publishWhip(mediaStream, whipUrl, token, options) {
    var pc = newPeerConnection(options);
    mediaStream.getTracks().forEach(function (track) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [mediaStream] });
    });
    if (options && options.videoCodec && RTCRtpSender.getCapabilities) {
      var want = options.videoCodec.toLowerCase();
      var caps = RTCRtpSender.getCapabilities("video").codecs;
      var preferred = caps.filter(function (c) { return c.mimeType.toLowerCase() === "video/" + want; });
      var rest = caps.filter(function (c) { return c.mimeType.toLowerCase() !== "video/" + want; });
      pc.getTransceivers().forEach(function (t) {
        if (t.sender && t.sender.track && t.sender.track.kind === "video" && t.setCodecPreferences) {
          t.setCodecPreferences(preferred.concat(rest));
        }
      });
    }
    return exchange(pc, whipUrl, token, options);
  }

  window.ControlroomWebRTC = { playWhep: playWhep, publishWhip: publishWhip };
})();
