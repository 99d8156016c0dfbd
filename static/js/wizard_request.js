// From templates/portal/wizard_request.html: kept out of the page so the Content-Security-Policy allows no inline script.
(function () {
  var select = document.getElementById("id_purpose"), other = document.getElementById("id_purpose_other");
  if (!select || !other) return;
  var box = other.closest(".field");
  function sync() { box.hidden = select.value !== "other"; }
  select.addEventListener("change", sync); sync();
})();
