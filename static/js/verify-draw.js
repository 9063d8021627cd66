/* Public draw page: recompute the draw in the viewer's own browser (Web Crypto), the same steps as
   compensation/draws.py: SHA-256 of the seed, SHA-256 of the entrant list, HMAC-SHA256(seed, id) per entrant,
   the K smallest win. Without Web Crypto (a page not served over HTTPS) the form asks the server instead. */
(function () {
  "use strict";
  var encoder = new TextEncoder();

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }
  function sha256(text) { return crypto.subtle.digest("SHA-256", encoder.encode(text)).then(hex); }

  function recompute(form) {
    var seed = form.dataset.seed, k = parseInt(form.dataset.k, 10) || 0;
    return fetch(form.dataset.entrantsUrl, {credentials: "same-origin"}).then(function (response) {
      if (!response.ok) throw new Error("entrants " + response.status);
      return response.text();
    }).then(function (text) {
      var ids = text ? text.split("\n").map(function (s) { return parseInt(s, 10); }) : [];
      return crypto.subtle.importKey("raw", encoder.encode(seed), {name: "HMAC", hash: "SHA-256"}, false, ["sign"])
        .then(function (key) {
          return Promise.all([
            sha256(seed), sha256(text),
            Promise.all(ids.map(function (id) {
              return crypto.subtle.sign("HMAC", key, encoder.encode(String(id))).then(function (mac) { return {id: id, score: hex(mac)}; });
            }))
          ]);
        });
    }).then(function (parts) {
      var scored = parts[2].sort(function (a, b) { return a.score < b.score ? -1 : a.score > b.score ? 1 : a.id - b.id; });
      var winners = scored.slice(0, k).map(function (s) { return s.id; }).join(",");
      var checks = {
        seed_matches_hash: parts[0] === form.dataset.seedHash,
        entrants_match_hash: parts[1] === form.dataset.entrantsHash,
        winners_match: winners === form.dataset.winners
      };
      checks.ok = checks.seed_matches_hash && checks.entrants_match_hash && checks.winners_match;
      return checks;
    });
  }

  function show(checks) {
    var out = document.getElementById("check-result");
    out.replaceChildren(document.getElementById("check-template").content.cloneNode(true));
    var box = out.querySelector(".check-result");
    Object.keys(checks).forEach(function (name) {
      var item = box.querySelector('[data-check="' + name + '"] b');
      if (item) item.textContent = checks[name] ? "✓" : "✗";
    });
    var verdict = box.querySelector(checks.ok ? "template.verdict-ok" : "template.verdict-bad").content.cloneNode(true);
    box.querySelector(".verdict").prepend(verdict);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("draw-check");
    if (!form || !(window.crypto && crypto.subtle && window.TextEncoder)) return;  // the server will check
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      var label = button.textContent;
      button.disabled = true;
      button.textContent = form.dataset.working;
      recompute(form).then(show).catch(function () { form.submit(); }).finally(function () {
        button.disabled = false;
        button.textContent = label;
      });
    });
  });
})();
