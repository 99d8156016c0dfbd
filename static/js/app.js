// Confirmation dialogs: a form or a submit button with data-confirm="…" asks first, in the page's modal
// (templates/components/_confirm_modal.html); without Bootstrap's script it falls back to confirm().
(function () {
  "use strict";
  var pending = null;

  function ask(text, proceed) {
    var el = document.getElementById("confirm-modal");
    if (!el || !window.bootstrap) {
      if (window.confirm(text)) proceed();
      return;
    }
    document.getElementById("confirm-modal-body").textContent = text;
    pending = proceed;
    window.bootstrap.Modal.getOrCreateInstance(el).show();
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("#confirm-ok")) {
      var el = document.getElementById("confirm-modal");
      window.bootstrap.Modal.getOrCreateInstance(el).hide();
      var go = pending;
      pending = null;
      if (go) go();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var text = (submitter && submitter.dataset.confirm) || form.dataset.confirm;
    if (!text || form.dataset.confirmed === "1") return;
    event.preventDefault();
    ask(text, function () {
      form.dataset.confirmed = "1";
      if (submitter && submitter.name) {
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = submitter.name;
        hidden.value = submitter.value;
        form.appendChild(hidden);
      }
      form.submit();
    });
  }, true);
})();

// A select with data-autosubmit sends its form when changed (the language switcher).
document.addEventListener("change", function (event) {
  var select = event.target.closest && event.target.closest("select[data-autosubmit]");
  if (select && select.form) select.form.submit();
});
