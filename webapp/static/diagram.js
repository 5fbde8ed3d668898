// The case diagram in the bpmn-js viewer, steps passed and steps open now marked. It opens at a readable
// scale with the current step in view (fitting a whole process into a phone's width makes its labels a
// few pixels tall); the buttons zoom, show the whole diagram, or go back to the current step. It can
// also be dragged, and zoomed with Ctrl + wheel.
(function () {
  var holder = document.getElementById("diagram");
  if (!holder || !window.BpmnJS) return;
  var READABLE = 0.85; // labels about 11 px high
  var MIN = 0.2, MAX = 3;
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
        var current = found.current.map(function (id) { return registry.get(id); }).filter(Boolean);

        function showCurrent() {
          canvas.zoom("fit-viewport", "auto");
          if (canvas.zoom() >= READABLE || !current.length) return;
          canvas.zoom(READABLE);
          var box = canvas.viewbox();
          // The open steps (their middle) a little left of the view's middle, so what comes next shows too;
          // when they lie too far apart for one view, the first of them.
          var shown = current.filter(function (e) { return e.x !== undefined && e.width !== undefined; });
          if (!shown.length) return;
          var left = Math.min.apply(null, shown.map(function (e) { return e.x; }));
          var right = Math.max.apply(null, shown.map(function (e) { return e.x + e.width; }));
          var top = Math.min.apply(null, shown.map(function (e) { return e.y; }));
          var bottom = Math.max.apply(null, shown.map(function (e) { return e.y + e.height; }));
          if (right - left > box.width * 0.9 || bottom - top > box.height * 0.9) {
            left = shown[0].x; right = left + shown[0].width; top = shown[0].y; bottom = top + shown[0].height;
          }
          canvas.viewbox({
            x: (left + right) / 2 - box.width * 0.4,
            y: (top + bottom) / 2 - box.height / 2,
            width: box.width,
            height: box.height,
          });
        }
        function zoomBy(factor) {
          var next = Math.max(MIN, Math.min(MAX, canvas.zoom() * factor));
          var box = canvas.viewbox();
          canvas.zoom(next, { x: box.width * box.scale / 2, y: box.height * box.scale / 2 });
        }
        var actions = {
          "in": function () { zoomBy(1.25); },
          out: function () { zoomBy(0.8); },
          fit: function () { canvas.zoom("fit-viewport", "auto"); },
          current: showCurrent,
        };
        document.querySelectorAll("[data-zoom]").forEach(function (button) {
          button.addEventListener("click", function () { actions[button.dataset.zoom](); holder.dataset.zoomed = canvas.zoom().toFixed(2); });
        });
        showCurrent();
        holder.dataset.zoomed = canvas.zoom().toFixed(2);
        holder.dataset.ready = "1";
      });
    })
    .catch(function (err) {
      holder.innerHTML = "<p class='muted'>" + (document.documentElement.lang === "en" ? "The diagram could not be shown." : "流程图无法显示。") + "</p>";
      holder.dataset.ready = "error";
      console.error(err);
    });
})();
