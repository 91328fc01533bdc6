// The quick exit of the public pages (the victims' pages, the report page): the #quick-exit
// link (which works without this script), or Shift pressed 3 times. The page is hidden at once
// and replaced in the history by the neutral site, so Back does not return to it.

const hooks = [];
let leaving = false;

// Something to do just before leaving (revoking the object URLs of the person's files).
export function beforeLeaving(hook) {
  hooks.push(hook);
}

export function leave() {
  if (leaving) return; // once: a second replace would abort the first
  leaving = true;
  document.body.hidden = true;
  for (const hook of hooks) hook();
  window.location.replace(document.getElementById("quick-exit").href);
}

document.getElementById("quick-exit").addEventListener("click", (event) => {
  event.preventDefault();
  leave();
});

// Only a bare Shift counts (pressed and let go with no other key between), so that typing
// capitals (Shift held for each letter) never leaves; any other key starts the count again.
let shifts = [];
let shiftAlone = false;
document.addEventListener("keydown", (event) => {
  if (event.key === "Shift") {
    if (!event.repeat) shiftAlone = true;
    return;
  }
  shiftAlone = false;
  shifts = [];
});
document.addEventListener("keyup", (event) => {
  if (event.key !== "Shift" || !shiftAlone) return;
  shiftAlone = false;
  const now = performance.now();
  shifts = shifts.filter((at) => now - at < 3000).concat(now);
  if (shifts.length >= 3) leave();
});
