// Immediate feedback on every action button: the moment a form is sent its submit buttons are disabled
// and marked busy (a double click cannot send twice; the person sees the click was taken), until the
// answer arrives (htmx) or the next page loads (plain forms).
(function () {
  function buttons(form) {
    return form ? Array.from(form.querySelectorAll('button[type=submit], button:not([type])')) : [];
  }
  function busy(form, on) {
    buttons(form).forEach(function (b) {
      b.disabled = on;
      if (on) { b.setAttribute('aria-busy', 'true'); } else { b.removeAttribute('aria-busy'); }
    });
  }
  document.addEventListener('htmx:beforeRequest', function (e) {
    var form = e.target.closest && e.target.closest('form');
    if (form) { busy(form, true); }
  });
  document.addEventListener('htmx:afterRequest', function (e) {
    var form = e.target.closest && e.target.closest('form');
    if (form && form.isConnected) { busy(form, false); }
  });
  document.addEventListener('submit', function (e) {
    var form = e.target;
    if (e.defaultPrevented || form.hasAttribute('hx-post') || form.hasAttribute('hx-get')) { return; }
    // after the browser has read the form (disabled buttons would not be sent)
    setTimeout(function () { busy(form, true); }, 0);
  });
  window.addEventListener('pageshow', function () {  // back/forward cache: never come back busy
    document.querySelectorAll('button[aria-busy=true]').forEach(function (b) { b.disabled = false; b.removeAttribute('aria-busy'); });
  });
})();
