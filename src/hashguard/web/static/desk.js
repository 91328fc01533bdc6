// The review desk: content stays blurred and grey until revealed, and is shielded again as soon
// as the reviewer looks away (pointer leaves it, the window loses focus, the tab is hidden).
(function () {
  "use strict";
  const content = document.getElementById("content");
  const reveal = document.getElementById("reveal");
  function shield() {
    if (content) { content.classList.add("shielded"); }
    if (reveal) { reveal.textContent = "Reveal (r)"; }
  }
  function toggle() {
    if (!content) { return; }
    content.classList.toggle("shielded");
    reveal.textContent = content.classList.contains("shielded") ? "Reveal (r)" : "Hide (r)";
  }
  if (reveal) { reveal.addEventListener("click", toggle); }
  if (content) { content.addEventListener("mouseleave", shield); }
  window.addEventListener("blur", shield);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { shield(); }
  });

  function choose(value) {
    const option = document.querySelector('input[name="decision"][value="' + value + '"]');
    if (option) {
      option.checked = true;
      document.getElementById("reason").focus();
    }
  }
  const rows = Array.from(document.querySelectorAll("tr[data-href]"));
  let current = rows.length ? 0 : -1;
  function mark() {
    rows.forEach(function (row, i) { row.classList.toggle("current", i === current); });
  }
  mark();
  document.addEventListener("keydown", function (event) {
    const typing = event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT";
    if (event.key === "Escape") { shield(); if (typing) { event.target.blur(); } return; }
    if (typing) { return; }
    if (event.key === "r") { toggle(); }
    else if (event.key === "c") { event.preventDefault(); choose("confirm"); }
    else if (event.key === "f") { event.preventDefault(); choose("false_positive"); }
    else if (event.key === "j" && rows.length) { current = Math.min(current + 1, rows.length - 1); mark(); }
    else if (event.key === "k" && rows.length) { current = Math.max(current - 1, 0); mark(); }
    else if (event.key === "Enter" && current >= 0) { window.location = rows[current].dataset.href; }
    else if (event.key === "n") {
      const next = document.getElementById("next");
      if (next) { window.location = next.href; }
    }
  });
})();
