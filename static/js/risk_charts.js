// From templates/staff/risk_home.html: kept out of the page so the Content-Security-Policy allows no inline script.
(function () {
  if (!window.Chart) return;
  var d = JSON.parse(document.getElementById("risk-charts").textContent);
  var colours = ["#198754", "#0dcaf0", "#ffc107", "#fd7e14", "#dc3545", "#6c757d"];
  var money = function (v) { return Number(v).toLocaleString(undefined, {maximumFractionDigits: 0}); };
  new Chart(document.getElementById("chart-classes"), {type: "doughnut",
    data: {labels: d.classes.labels, datasets: [{label: d.text.balance, data: d.classes.balance, backgroundColor: colours}]},
    options: {maintainAspectRatio: false, plugins: {legend: {position: "right"}, tooltip: {callbacks: {label: function (c) { return c.label + ": " + money(c.parsed); }}}}}});
  new Chart(document.getElementById("chart-buckets"), {type: "bar",
    data: {labels: d.buckets.labels, datasets: [{label: d.text.loans, data: d.buckets.n, backgroundColor: "#fd7e14"}]},
    options: {maintainAspectRatio: false, plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
  new Chart(document.getElementById("chart-trend"), {type: "line",
    data: {labels: d.trend.labels, datasets: [{label: d.text.disbursed, data: d.trend.amount, borderColor: "#b3261e", backgroundColor: "rgba(179,38,30,.15)", fill: true, tension: .3}]},
    options: {maintainAspectRatio: false, plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true, ticks: {callback: money}}}}});
  var lines = document.getElementById("chart-line-drawdowns");
  if (lines && d.lines) {  // drawdowns on the credit lines: the amount as bars, the count as a line on its own axis
    new Chart(lines, {data: {labels: d.lines.labels, datasets: [
      {type: "bar", label: d.text.drawn, data: d.lines.amount, backgroundColor: "rgba(11,92,173,.6)", yAxisID: "y"},
      {type: "line", label: d.text.drawdowns, data: d.lines.n, borderColor: "#b3261e", backgroundColor: "#b3261e", yAxisID: "n", tension: .3}]},
      options: {maintainAspectRatio: false, plugins: {legend: {position: "bottom"}},
        scales: {y: {beginAtZero: true, ticks: {callback: money}}, n: {beginAtZero: true, position: "right", grid: {drawOnChartArea: false}, ticks: {precision: 0}}}}});
  }
})();
