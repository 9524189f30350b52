// The console's own script: times in the viewer's zone, charts from the data the server put in the page.
// Loaded from the console itself (no CDN); the pages read without it.
(function () {
  "use strict";
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  function localise(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      const at = new Date(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      el.title = el.textContent;
      el.textContent = at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    });
    root.querySelectorAll('input[name="viewer_zone"]').forEach(function (el) { el.value = zone; });
    root.querySelectorAll("input[data-viewer-zone]").forEach(function (el) { if (!el.value) el.value = zone; });
  }

  function hourLabel(iso) {
    return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }

  function charts(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      const spec = JSON.parse(canvas.dataset.chart);
      const labels = spec.hours ? spec.labels.map(hourLabel) : spec.labels;
      const scales = { y: { beginAtZero: true, stacked: !!spec.stacked }, x: { stacked: !!spec.stacked } };
      if (spec.datasets.some(function (d) { return d.yAxisID === "cost"; })) {
        scales.cost = { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } };
      }
      new Chart(canvas, {
        type: spec.type, data: { labels: labels, datasets: spec.datasets },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: scales },
      });
      canvas.dataset.drawn = "1";
    });
  }

  function ready(root) { localise(root); charts(root); }

  document.addEventListener("DOMContentLoaded", function () {
    const shown = document.getElementById("viewer-zone");
    if (shown) shown.textContent = zone;
    // The heat map is drawn on the server, first in the quota time zone: ask again in the viewer's.
    const heat = document.getElementById("heat-zone");
    const asked = new URLSearchParams(location.search);
    if (heat && !asked.has("tz") && heat.textContent !== zone) {
      const url = new URL(location.href);
      url.searchParams.set("tz", zone);
      location.replace(url.toString());
      return;
    }
    ready(document);
    document.body.addEventListener("htmx:afterSwap", function (event) { ready(event.target); });
  });
})();
