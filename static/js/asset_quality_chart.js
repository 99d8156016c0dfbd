// From templates/finance/asset_quality.html: kept out of the page so the Content-Security-Policy allows no inline script.
(function () {
  var data = JSON.parse(document.getElementById("asset-quality-data").textContent);
  var canvas = document.getElementById("asset-quality-chart");
  if (!canvas || typeof Chart === "undefined") { return; }
  var num = function (v) { return Number(v); };
  new Chart(canvas, {type: "bar", data: {labels: data.labels, datasets: [
    {label: data.balance_label, data: data.balance.map(num), backgroundColor: "#0b5cad"},
    {label: data.provision_label, data: data.provision.map(num), backgroundColor: "#b3261e"}]},
    options: {responsive: true, maintainAspectRatio: false, scales: {y: {ticks: {callback: function (v) { return Number(v).toLocaleString(); }}}}}});
})();
