// The case diagram in the bpmn-js viewer, steps passed and steps open now marked.
(function () {
  var holder = document.getElementById("diagram");
  if (!holder || !window.BpmnJS) return;
  fetch(holder.dataset.src, { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
    .then(function (found) {
      holder.innerHTML = "";
      var viewer = new window.BpmnJS({ container: holder });
      return viewer.importXML(found.xml).then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        found.completed.forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, "step-done"); });
        found.current.forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, "step-current"); });
        canvas.zoom("fit-viewport", "auto");
        holder.dataset.ready = "1";
      });
    })
    .catch(function (err) {
      holder.innerHTML = "<p class='muted'>" + (document.documentElement.lang === "en" ? "The diagram could not be shown." : "流程图无法显示。") + "</p>";
      holder.dataset.ready = "error";
      console.error(err);
    });
})();
