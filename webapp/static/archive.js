// Archive jobs: poll each unfinished job's progress (a JSON endpoint) and move its bar until it is done.
(function () {
  var FINISHED = { done: true, failed: true, stale: true };

  function poll(item) {
    fetch(item.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (p) {
        if (!p) return;
        item.dataset.status = p.status;
        var bar = item.querySelector("progress");
        bar.value = p.percent;
        bar.textContent = p.percent + "%";
        var text = item.querySelector(".job-text");
        text.textContent = text.dataset["label" + p.status.charAt(0).toUpperCase() + p.status.slice(1)] || p.status;
        item.querySelector(".job-count").textContent = p.done + "/" + p.total;
        item.querySelector(".job-message").textContent = p.message || "";
        item.querySelector(".job-download").hidden = !p.ready;
        if (!FINISHED[p.status]) window.setTimeout(function () { poll(item); }, 1500);
      })
      .catch(function () { window.setTimeout(function () { poll(item); }, 5000); });
  }

  document.querySelectorAll(".archive-job").forEach(function (item) {
    if (!FINISHED[item.dataset.status]) poll(item);
  });
})();
