// The review desk: content stays blurred and grey until revealed, and is shielded again as soon
// as the reviewer looks away (pointer leaves it, the window loses focus, the tab is hidden).
// A failed fetch shows the server's reason in the image's place; a video plays in its place. Forms that act ask in a
// dialog before they are sent (without this script, the server asks on a page of its own).
(function () {
  "use strict";
  let content = document.getElementById("content");
  const reveal = document.getElementById("reveal");
  const refusal = document.getElementById("fetch-error");
  function shield() {
    if (content) { content.classList.add("shielded"); }
    if (reveal) { reveal.firstChild.textContent = "Reveal "; reveal.setAttribute("aria-pressed", "false"); }
  }
  function toggle() {
    if (!content || content.hidden) { return; }
    content.classList.toggle("shielded");
    const shown = !content.classList.contains("shielded");
    reveal.firstChild.textContent = shown ? "Hide " : "Reveal ";
    reveal.setAttribute("aria-pressed", shown ? "true" : "false");
  }
  // A video in the image's place, shielded as the image was, paused until played.
  function play(blob) {
    const video = document.createElement("video");
    video.id = "content";
    video.className = "shielded";
    video.controls = true;
    video.muted = true;
    video.preload = "metadata";
    video.setAttribute("aria-label", "The item, a video, blurred and grey until revealed");
    video.src = URL.createObjectURL(blob);
    video.addEventListener("mouseleave", shield);
    content.replaceWith(video);
    content = video;
    if (reveal) { reveal.disabled = false; }
  }
  // The content route answers why it could not show the item, as text: say it in its place.
  function refused() {
    if (!content || !refusal) { return; }
    content.hidden = true;
    if (reveal) { reveal.disabled = true; }
    fetch(content.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        const type = answer.headers.get("content-type") || "";
        if (answer.ok && type.indexOf("video/") === 0) { return answer.blob().then(play); }
        return answer.ok ? "Reload the page to try again." : answer.text();
      })
      .catch(function () { return "The desk could not be reached."; })
      .then(function (reason) {
        if (typeof reason === "string") { refusal.textContent = reason; refusal.hidden = false; }
      });
  }
  if (content) {
    content.addEventListener("error", refused);
    if (content.complete && content.naturalWidth === 0) { refused(); }
    content.addEventListener("mouseleave", shield);
  }
  if (reveal) { reveal.addEventListener("click", toggle); }
  window.addEventListener("blur", shield);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { shield(); }
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      const confirmed = form.querySelector("input[name=confirmed]");
      if (!confirmed || confirmed.value === "yes") { return; }
      const chosen = form.querySelector("input[type=radio]:checked");
      const question = (chosen && chosen.dataset.consequence) || form.dataset.confirm;
      if (window.confirm(question + "\n\nGo ahead?")) { confirmed.value = "yes"; }
      else { event.preventDefault(); }
    });
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
  rows.forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.tagName !== "A") { window.location = row.dataset.href; }
    });
  });
  document.addEventListener("keydown", function (event) {
    const tag = event.target.tagName;
    const typing = tag === "TEXTAREA" || tag === "INPUT" || tag === "SELECT";
    if (event.key === "Escape") { shield(); if (typing) { event.target.blur(); } return; }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "r") { toggle(); }
    else if (event.key === "c") { event.preventDefault(); choose("confirm"); }
    else if (event.key === "f") { event.preventDefault(); choose("false_positive"); }
    else if (event.key === "j" && rows.length) { current = Math.min(current + 1, rows.length - 1); mark(); }
    else if (event.key === "k" && rows.length) { current = Math.max(current - 1, 0); mark(); }
    else if (event.key === "Enter" && current >= 0 && tag !== "A" && tag !== "BUTTON") {
      window.location = rows[current].dataset.href;
    }
    else if (event.key === "n") {
      const next = document.getElementById("next");
      if (next) { window.location = next.href; }
    }
  });
})();
