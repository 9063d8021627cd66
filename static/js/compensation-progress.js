// Progress bars never go backwards: pushes from several workers can arrive out of order, so a
// fragment reporting fewer done items than the one on screen is dropped (the counts only grow).
document.addEventListener("htmx:wsBeforeMessage", function (event) {
  var message = event.detail && event.detail.message;
  if (typeof message !== "string" || message.indexOf("data-done") < 0) return;
  var holder = document.createElement("template");
  holder.innerHTML = message.trim();
  var incoming = holder.content.firstElementChild;
  if (!incoming || !incoming.id) return;
  var current = document.getElementById(incoming.id);
  if (!current) return;
  var finished = ["completed", "failed", "cancelled"];
  if (finished.indexOf(current.dataset.status) >= 0 && finished.indexOf(incoming.dataset.status) < 0) {
    event.preventDefault();  // a late "issuing" push after the final one
    return;
  }
  if (parseInt(incoming.dataset.done, 10) < parseInt(current.dataset.done, 10)) event.preventDefault();
});
