// The order page's CVCo block: while a request is open, poll its status and reload the page when
// one changes (the order's payments change with it).
(function () {
  var panel = document.getElementById("cvco-requests");
  if (!panel || panel.getAttribute("data-open") !== "1") return;
  var seen = {};
  Array.prototype.forEach.call(panel.querySelectorAll("tr[data-request-id]"), function (row) {
    seen[row.getAttribute("data-request-id")] = row.querySelector(".cvco-status").textContent.trim();
  });
  function poll() {
    fetch(panel.getAttribute("data-status-url"), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var changed = data.items.some(function (item) { return seen[item.request_id] !== item.status; });
        if (changed) { window.location.reload(); return; }
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 10000); });
  }
  setTimeout(poll, 3000);
})();
