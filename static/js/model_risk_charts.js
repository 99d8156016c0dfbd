// From templates/analytics/model_risk.html: kept out of the page so the Content-Security-Policy allows no inline script.
(function () {
  if (typeof Chart === "undefined") { return; }
  var c = JSON.parse(document.getElementById("model-risk-charts").textContent);
  var palette = ["#1e7b34", "#0b5cad", "#b7791f", "#c05621", "#b3261e"];
  var pct = function (v) { return v === null ? null : Math.round(v * 10000) / 100; };
  var common = {responsive: true, maintainAspectRatio: false, animation: false};
  var drift = document.getElementById("chart-drift");
  if (drift) {
    new Chart(drift, {type: "line", options: common, data: {labels: c.drift.labels, datasets: [
      {label: c.labels.psi, data: c.drift.psi, borderColor: "#0b5cad", backgroundColor: "#0b5cad"},
      {label: c.labels.noise, data: c.drift.noise, borderColor: "#718096", borderDash: [4, 4], backgroundColor: "#718096"}]}});
  }
  var bt = document.getElementById("chart-backtest");
  if (bt) {
    new Chart(bt, {type: "bar", options: Object.assign({scales: {y: {beginAtZero: true, ticks: {callback: function (v) { return v + "%"; }}}}}, common),
      data: {labels: c.backtest.grades, datasets: [
        {label: c.labels.observed, data: c.backtest.observed.map(pct), backgroundColor: "#b3261e"},
        {label: c.labels.pd, data: c.backtest.pd.map(pct), backgroundColor: "#0b5cad"}]}});
  }
  var pdc = document.getElementById("chart-pd");
  if (pdc) {
    new Chart(pdc, {type: "line", options: Object.assign({scales: {y: {beginAtZero: true, ticks: {callback: function (v) { return v + "%"; }}}}}, common),
      data: {labels: c.pd.months, datasets: Object.keys(c.pd.curves).map(function (g, i) {
        return {label: g, data: c.pd.curves[g].map(pct), borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], pointRadius: 0};
      })}});
  }
})();
