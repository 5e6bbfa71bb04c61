"use strict";
(function () {
  // the figures travel as JSON; this script puts them on screen with textContent only
  const DATA = JSON.parse(document.getElementById("promstack-dashboard").textContent);
  const readout = document.getElementById("readout");
  const SERIES = {
    cost_model: DATA.cost_by_model, cost_version: DATA.cost_by_version, latency: DATA.latency, errors: DATA.error_rate,
  };
  for (const fig of document.querySelectorAll("figure[data-chart]")) {
    const series = SERIES[fig.dataset.chart];
    for (const li of fig.querySelectorAll("ul.legend li[data-series]")) {
      const toggle = () => {
        li.classList.toggle("off");
        const g = fig.querySelector(`svg g[data-series="${li.dataset.series}"]`);
        if (g) g.classList.toggle("off");
      };
      li.addEventListener("click", toggle);
      li.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
    }
    const svg = fig.querySelector("svg");
    if (!svg || !series || !DATA.axis.length) continue;
    svg.addEventListener("mousemove", (e) => {
      const box = svg.getBoundingClientRect();
      const x = (e.clientX - box.left) * (640 / box.width);
      const n = DATA.axis.length;
      const i = Math.max(0, Math.min(n - 1, Math.round(n > 1 ? (x - 64) / (640 - 64 - 16) * (n - 1) : 0)));
      const parts = series.map((s) => `${s.name} ${s.values[i] == null ? "n/a" : Number(s.values[i]).toPrecision(4)}`);
      readout.textContent = `${DATA.axis[i]} · ${parts.join(" · ")}`;
    });
  }
})();
