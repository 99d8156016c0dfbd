// From templates/portal/wizard_consent.html: kept out of the page so the Content-Security-Policy allows no inline script.
(function () {
  var all = document.getElementById("consent-all"), boxes = document.querySelectorAll("input[name=scopes]");
  function sync() { all.checked = Array.prototype.every.call(boxes, function (b) { return b.checked; }); }
  all.addEventListener("change", function () { boxes.forEach(function (b) { b.checked = all.checked; }); });
  boxes.forEach(function (b) { b.addEventListener("change", sync); });
  sync();
})();
