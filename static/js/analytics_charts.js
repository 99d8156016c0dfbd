// From templates/analytics/home.html: kept out of the page so the Content-Security-Policy allows no inline script.
(function () {
  var specs = JSON.parse(document.getElementById("analytics-charts").textContent);
  var palette = ["#0b5cad", "#b3261e", "#1e7b34", "#b7791f", "#6b46c1", "#2c7a7b", "#c05621", "#4a5568", "#d53f8c", "#2b6cb0", "#38a169", "#718096"];
  Object.keys(specs).forEach(function (key) {
    var spec = specs[key], c = spec.chart, canvas = document.getElementById("chart-" + key);
    if (!canvas || typeof Chart === "undefined") { return; }
    var col = function (name) { return spec.columns.indexOf(name); };
    var num = function (v) { return v === null || v === "" ? null : Number(v); };
    var labels, datasets;
    if (c.type === "vintage") {  // one line per cohort, months on book on the x axis
      labels = c.series.map(function (s) { return s.toUpperCase(); });
      datasets = spec.rows.map(function (row, i) {
        return {label: String(row[col(c.x)]), data: c.series.map(function (s) { return num(row[col(s)]); }),
                borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], spanGaps: false};
      });
    } else {
      labels = spec.rows.map(function (row) { return row[col(c.x)]; });
      datasets = c.series.map(function (s, i) {
        return {label: (spec.labels || {})[s] || s, data: spec.rows.map(function (row) { return num(row[col(s)]); }),
                backgroundColor: palette[i % palette.length], borderColor: palette[i % palette.length]};
      });
    }
    new Chart(canvas, {
      type: c.type === "vintage" ? "line" : c.type,
      data: {labels: labels, datasets: datasets},
      options: {responsive: true, maintainAspectRatio: false, animation: false, indexAxis: c.horizontal ? "y" : "x",
                scales: {x: {stacked: !!c.stacked}, y: {stacked: !!c.stacked, beginAtZero: true}}}
    });
  });
})();
