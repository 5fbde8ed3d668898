// Dashboard charts (Chart.js, served from node_modules). The figures and the link behind every bar come
// from the page's #chart-data element; clicking a bar opens the list behind it. Without JavaScript or
// Chart.js the tables under each chart carry the same figures and links.
(function () {
  "use strict";
  var holder = document.getElementById("chart-data");
  if (!holder || typeof window.Chart === "undefined") return;
  var charts = JSON.parse(holder.dataset.charts || "{}");
  var palette = ["#b42318", "#1d4ed8", "#16794c", "#b45309", "#7c3aed", "#0e7490", "#be185d", "#4b5563"];

  // A dashed line across the chart at the target (e.g. 100 %).
  var targetLine = {
    id: "targetLine",
    afterDatasetsDraw: function (chart, _args, options) {
      if (options.value === null || options.value === undefined) return;
      var y = chart.scales.y.getPixelForValue(options.value);
      var ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = "#16794c";
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(chart.chartArea.left, y);
      ctx.lineTo(chart.chartArea.right, y);
      ctx.stroke();
      ctx.restore();
    }
  };

  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var spec = charts[canvas.dataset.chart];
    if (!spec || !spec.labels || !spec.labels.length) {
      canvas.parentElement.hidden = true;
      return;
    }
    var percent = !!spec.percent;
    var colours = spec.values.map(function (value, i) {
      if (percent && spec.target !== undefined && spec.target !== null) {
        return value !== null && value >= spec.target ? "#16794c" : "#c81e1e";
      }
      return palette[i % palette.length];
    });
    // On a phone, counts are drawn as horizontal bars so that long names (processes, townships) stay readable.
    var horizontal = !percent && canvas.parentElement.clientWidth < 520;
    var valueAxis = { beginAtZero: true, max: percent ? 100 : undefined, ticks: { precision: 0 } };
    var nameAxis = horizontal ? { ticks: { autoSkip: false } } : { ticks: { autoSkip: false, maxRotation: 50, minRotation: 0 } };
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: [{ label: spec.title, data: spec.values, backgroundColor: colours, maxBarThickness: 42 }]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        plugins: {
          legend: { display: false },
          title: { display: false },
          tooltip: {
            callbacks: {
              label: function (item) {
                return percent ? item.formattedValue + "%" : item.formattedValue;
              }
            }
          },
          targetLine: { value: percent ? spec.target : null }
        },
        indexAxis: horizontal ? "y" : "x",
        scales: horizontal ? { x: valueAxis, y: nameAxis } : { y: valueAxis, x: nameAxis },
        onClick: function (_event, elements) {
          if (elements.length && spec.links && spec.links[elements[0].index]) {
            window.location.href = spec.links[elements[0].index];
          }
        },
        onHover: function (event, elements) {
          event.native.target.style.cursor = elements.length ? "pointer" : "default";
        }
      },
      plugins: [targetLine]
    });
  });
})();
