// From templates/staff/review.html: kept out of the page so the Content-Security-Policy allows no inline script.
(function () {
  var form = document.getElementById("decide-form");
  function sync() {
    if (!form) return;
    var v = (form.querySelector("input[name=decision]:checked") || {}).value;
    var show = {"approve-fields": v === "approve", "decline-codes": v === "decline", "return-codes": v === "return"};
    Object.keys(show).forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) return;
      el.hidden = !show[id];
      el.querySelectorAll("input").forEach(function (i) { if (!show[id] && i.type === "checkbox") i.checked = false; });
    });
  }
  function openTimeline() {
    var boxes = document.querySelectorAll("details.card:not(#request-info)");  // the summary's timeline is its last
    var box = document.getElementById("timeline") || boxes[boxes.length - 1];
    if (box) { box.open = true; box.scrollIntoView(); }
  }
  if (form) { form.addEventListener("change", sync); sync(); }
  var link = document.getElementById("open-timeline");
  if (link) link.addEventListener("click", function (e) { e.preventDefault(); openTimeline(); });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && form) { e.preventDefault(); form.requestSubmit(document.getElementById("submit-decision")); return; }
    if (["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
    var map = {a: "decision-approve", d: "decision-decline", r: "decision-return"};
    if (map[e.key]) { var el = document.getElementById(map[e.key]); if (el) { el.checked = true; el.focus(); sync(); } }
    else if (e.key === "t") { openTimeline(); }
    else if (e.key === "i") { var box = document.getElementById("request-info"); if (box) { box.open = true; document.getElementById("info-message").focus(); e.preventDefault(); } }
  });
})();
