// The victims' pages (/victims, /victims/follow). Pictures are opened only here: thumbnails
// are object URLs, hashing runs in this browser (images in a module worker, videos here,
// where the browser's video decoding is), and only the fingerprints are sent.
// The words come from the page itself (data-words), in the page's language.

import { beforeLeaving } from "./exit.js";

const WORDS = JSON.parse(document.body.dataset.words || "{}");
const LANGUAGE = document.documentElement.lang === "nl" ? "nl" : "en";
const QUALITY_FLOOR = 50; // PDQ hashes below this match too much: refused before sending
const NEAR = 31; // PDQ bits: files this close in the selection are shown and sent as one
const CASES = "/v1/victims/cases";

function say(key, values = {}) {
  return (WORDS[key] || key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

// The words for a count: the key's "_one" form for 1 where it has one ("1 file", not "1 files").
function counted(key, count, values = {}) {
  return say(count === 1 && WORDS[`${key}_one`] ? `${key}_one` : key, { count, ...values });
}

function $(id) {
  return document.getElementById(id);
}

function element(tag, attributes = {}, ...children) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") made.textContent = value;
    else if (value !== false && value != null) made.setAttribute(name, value === true ? "" : value);
  }
  made.append(...children.filter((child) => child != null));
  return made;
}

// detail: the server's own reason (in English), shown as secondary text under ours
function show(id, text, detail = "") {
  const box = $(id);
  box.textContent = text;
  if (text && detail) {
    box.append(element("span", { class: "detail" }, `${say("detail")} `, element("span", { lang: "en", text: detail })));
  }
  box.hidden = !text;
  return box;
}

// ---- the quick exit (exit.js); the object URLs of the person's files are revoked on leaving
const urls = new Set();
beforeLeaving(() => {
  for (const url of urls) URL.revokeObjectURL(url);
});

// ---- moving between the victims' pages replaces this history entry, so that however many of
// them the person visits, they leave one entry, which the quick exit then replaces
function victimPage(url) {
  return url.origin === window.location.origin && /^\/victims(\/|$)/.test(url.pathname);
}

function here(url) {
  return url.pathname === window.location.pathname && url.search === window.location.search;
}

document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return; // a new tab or window
  if ((link.target && link.target !== "_self") || link.hasAttribute("download")) return;
  const url = new URL(link.href, window.location.href);
  if (!victimPage(url)) return;
  event.preventDefault();
  if (here(url) && url.hash) {
    // a link within the page (the skip link): moves the focus, adds no entry
    const target = document.getElementById(decodeURIComponent(url.hash.slice(1)));
    if (target) {
      target.focus();
      target.scrollIntoView();
    }
    return;
  }
  window.location.replace(url.href);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || event.defaultPrevented) return;
  const url = new URL(form.action, window.location.href);
  if (form.method !== "get" || !victimPage(url)) return;
  event.preventDefault();
  url.search = new URLSearchParams(new FormData(form, event.submitter)).toString();
  window.location.replace(url.href);
});

// ---- answers of the cases' API
async function asked(path, options) {
  let answer;
  try {
    answer = await fetch(path, {
      ...options,
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch {
    return { status: 0, body: null, answer: null };
  }
  let body = null;
  try {
    body = await answer.json();
  } catch {
    body = null;
  }
  return { status: answer.status, body, answer };
}

function reason(body) {
  return (body && body.error && body.error.message) || "";
}

// The API's error codes (hashguard.api.errors) with their statuses, for answers without a body.
const CODES = { 400: "bad_request", 404: "not_found", 413: "too_large", 422: "invalid", 429: "rate_limited" };

function code(status, body) {
  return (body && body.error && body.error.code) || CODES[status] || "";
}

// The words for a wait of Retry-After seconds, in whole minutes: "1 minute", "{minutes} minutes".
function waiting(key, answer) {
  const seconds = Number(answer && answer.headers.get("Retry-After"));
  const minutes = Math.max(1, Math.ceil((Number.isFinite(seconds) && seconds > 0 ? seconds : 60) / 60));
  return minutes === 1 ? say(`${key}_one`) : say(key, { minutes });
}

// ---- the start page: choose, hash, check, send
function distance(one, other) {
  let bits = 0;
  for (let at = 0; at < one.length; at += 8) {
    let x = parseInt(one.slice(at, at + 8), 16) ^ parseInt(other.slice(at, at + 8), 16);
    x -= (x >>> 1) & 0x55555555;
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    bits += (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  }
  return bits;
}

function startPage() {
  const items = []; // {id, file, video, url, state: working|ready|failed, hashes, progress}
  let nextId = 0;
  let worker = null;
  let running = null;
  const waiting = new Map(); // worker job id -> {resolve, reject, item}

  function imageWorker() {
    if (worker) return worker;
    worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.addEventListener("message", ({ data }) => {
      const job = waiting.get(data.id);
      if (!job) return;
      if ("progress" in data) {
        job.item.progress = fraction(...data.progress);
        progress();
      } else {
        waiting.delete(data.id);
        if (data.failed) job.reject(new Error(data.failed));
        else job.resolve(Object.assign(data.hashes, { failed: data.undecoded }));
      }
    });
    worker.addEventListener("error", () => {
      for (const job of waiting.values()) job.reject(new Error("worker"));
      waiting.clear();
      worker = null;
    });
    return worker;
  }

  // hasher.js reports onProgress(done, total)
  function fraction(done, total) {
    const number = total ? done / total : done;
    return Number.isFinite(number) ? Math.min(1, Math.max(0, number)) : 0;
  }

  async function hashed(item) {
    if (!item.video) {
      return new Promise((resolve, reject) => {
        waiting.set(item.id, { resolve, reject, item });
        imageWorker().postMessage({ id: item.id, file: item.file });
      });
    }
    const { hashFile } = await import("./hasher.js");
    return hashFile(item.file, {
      onProgress: (done, total) => {
        item.progress = fraction(done, total);
        progress();
      },
    });
  }

  async function hashAll() {
    for (;;) {
      const item = items.find((candidate) => candidate.state === "working");
      if (!item) break;
      try {
        item.hashes = await hashed(item);
        item.state = items.includes(item) ? "ready" : "removed";
      } catch {
        item.state = "failed";
      }
      item.progress = 1;
      render();
    }
    running = null;
    progress();
  }

  function progress() {
    const total = items.length;
    const box = $("progress-box");
    box.hidden = total === 0;
    if (total === 0) return;
    const done = items.filter((item) => item.state !== "working").length;
    const partial = items.reduce((sum, item) => sum + (item.state === "working" ? item.progress : 1), 0);
    $("progress").value = Math.round((100 * partial) / total);
    box.dataset.done = String(done === total);
    const text = done === total ? counted("done", total, { total }) : counted("working", total, { done, total });
    if ($("progress-status").textContent !== text) $("progress-status").textContent = text;
  }

  function usable(item) {
    return (item.hashes || []).filter(
      (hash) => hash.signal !== "pdq" || hash.quality == null || hash.quality >= QUALITY_FLOOR,
    );
  }

  function lowQuality(item) {
    return (item.hashes || []).some(
      (hash) => hash.signal === "pdq" && hash.quality != null && hash.quality < QUALITY_FLOOR,
    );
  }

  // Files within NEAR bits of one another (by a usable PDQ), or with the same bytes, are one.
  function groups() {
    const parent = items.map((_, index) => index);
    const root = (index) => (parent[index] === index ? index : (parent[index] = root(parent[index])));
    const pdq = items.map((item) => usable(item).find((hash) => hash.signal === "pdq"));
    const sha = items.map((item) => (item.hashes || []).find((hash) => hash.signal === "sha256"));
    for (let one = 0; one < items.length; one++) {
      for (let other = 0; other < one; other++) {
        const near = pdq[one] && pdq[other] && distance(pdq[one].value, pdq[other].value) <= NEAR;
        const same = sha[one] && sha[other] && sha[one].value === sha[other].value;
        if (near || same) parent[root(one)] = root(other);
      }
    }
    const found = new Map();
    items.forEach((item, index) => {
      const key = root(index);
      if (!found.has(key)) found.set(key, []);
      found.get(key).push(item);
    });
    return [...found.values()];
  }

  function thumbnail(item) {
    if (item.video) {
      // #t: a frame to show, not a blank box
      return element("video", { src: `${item.url}#t=0.5`, muted: true, preload: "auto", "aria-hidden": "true" });
    }
    return element("img", { src: item.url, alt: "" });
  }

  function fileState(item) {
    if (item.state === "working") return element("p", { class: "state", text: say("file_working") });
    if (item.state === "failed") return element("p", { class: "state failed", text: say("file_failed") });
    const notes = [element("p", { class: "state ready", text: say("file_ready") })];
    if (item.hashes.failed) notes.push(element("p", { class: "low-quality", text: say("digests_only") }));
    if (lowQuality(item)) notes.push(element("p", { class: "low-quality", text: say("low_quality") }));
    return element("div", {}, ...notes);
  }

  function distinct(notes) {
    const seen = new Set();
    return notes.filter((note) => !seen.has(note.textContent) && seen.add(note.textContent));
  }

  function render() {
    const list = $("chosen");
    const focused = document.activeElement && document.activeElement.dataset.remove;
    list.replaceChildren();
    for (const group of groups()) {
      const [first] = group;
      const names = group.map((item) => item.file.name).join(", ");
      const remove = element("button", {
        type: "button",
        class: "quiet",
        "data-remove": String(first.id),
        "aria-label": say("remove", { name: names }),
        text: "×",
      });
      remove.addEventListener("click", () => removeGroup(group));
      const caption = element(
        "figcaption",
        {},
        element("span", { class: "name", text: names }),
        group.length > 1 ? element("p", { class: "duplicates", text: say("duplicates", { count: group.length }) }) : null,
        ...distinct(group.map(fileState)),
      );
      list.append(
        element(
          "li",
          { class: first.state === "failed" ? "failed" : lowQuality(first) ? "low" : "" },
          element("figure", {}, thumbnail(first), caption),
          remove,
        ),
      );
    }
    if (focused) {
      const again = list.querySelector(`[data-remove="${focused}"]`);
      if (again) again.focus();
    }
    progress();
  }

  function removeGroup(group) {
    for (const item of group) {
      URL.revokeObjectURL(item.url);
      urls.delete(item.url);
      items.splice(items.indexOf(item), 1);
    }
    render();
    $("files").focus();
  }

  $("files").addEventListener("change", (event) => {
    for (const file of event.target.files) {
      const url = URL.createObjectURL(file);
      urls.add(url);
      items.push({
        id: nextId++,
        file,
        video: file.type.startsWith("video/"),
        url,
        state: "working",
        hashes: null,
        progress: 0,
      });
    }
    event.target.value = "";
    show("form-error", "");
    render();
    if (!running) running = hashAll();
  });

  // What is sent: per group, its best usable PDQ and every other hash of its files, once each.
  function fingerprints() {
    const chosen = new Map();
    for (const group of groups()) {
      const pictures = group.flatMap((item) => usable(item).filter((hash) => hash.signal === "pdq"));
      pictures.sort((one, other) => (other.quality ?? 0) - (one.quality ?? 0));
      const rest = group.flatMap((item) => usable(item).filter((hash) => hash.signal !== "pdq"));
      for (const hash of pictures.slice(0, 1).concat(rest)) {
        const sent = { signal: hash.signal, value: hash.value };
        if (hash.quality != null) sent.quality = hash.quality;
        chosen.set(`${hash.signal}:${hash.value}`, sent);
      }
    }
    return [...chosen.values()];
  }

  function refuse(text, detail = "") {
    show("form-error", text, detail).focus();
  }

  $("case-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const age = document.querySelector("input[name=under_18]:checked");
    if (items.length === 0) return refuse(say("need_files"));
    if (items.some((item) => item.state === "working")) return refuse(say("still_working"));
    if (!age) return refuse(say("need_age"));
    const hashes = fingerprints();
    if (hashes.length === 0) return refuse(say("nothing"));
    show("form-error", "");
    const send = $("send");
    send.disabled = true;
    send.setAttribute("aria-busy", "true");
    $("progress-status").textContent = say("sending");
    const { status, body, answer } = await asked(CASES, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ hashes, under_18: age.value === "yes", language: LANGUAGE }),
    });
    send.disabled = false;
    send.removeAttribute("aria-busy");
    if (status === 201 && body && body.case) return opened(body);
    progress(); // not sent: the status says the fingerprints are ready again, not "sending"
    const refusal = code(status, body);
    if (refusal === "rate_limited") return refuse(waiting("refused_rate_limited", answer), reason(body));
    if (["bad_request", "too_large", "invalid"].includes(refusal)) {
      return refuse(say(`refused_${refusal}`), reason(body));
    }
    refuse(say("not_sent"));
  });

  function opened(answer) {
    for (const item of items) URL.revokeObjectURL(item.url);
    urls.clear();
    items.length = 0;
    $("case-form").hidden = true;
    $("case-number").textContent = answer.case;
    $("case-pin").textContent = answer.pin;
    const result = $("result");
    result.hidden = false;
    result.focus();
  }

  $("copy").addEventListener("click", async () => {
    const text = [...document.querySelectorAll("#result .secret div")]
      .map((row) => `${row.querySelector("dt").textContent}: ${row.querySelector("dd").textContent}`)
      .join("\n");
    try {
      await navigator.clipboard.writeText(text);
      $("copy-status").textContent = say("copied");
    } catch {
      $("copy-status").textContent = say("copy_failed");
    }
  });
  $("print").addEventListener("click", () => window.print());
}

// ---- the follow page: status and withdrawal
function followPage() {
  let opened = null; // {case, pin}: kept in memory only, for the withdrawal
  let hashes = [];

  function stateWords(state) {
    return WORDS[`state_${state}`] || state;
  }

  function signalWords(signal) {
    return WORDS[`signal_${signal}`] || say("signal_other");
  }

  // A value as the person can tell it apart: a video by its length (its vPDQ frames are
  // sampled once a second), a hash by its first and last digits.
  function short(hash) {
    if (hash.signal === "vpdq") {
      let frames = hash.value.split("\n").length;
      try {
        frames = JSON.parse(hash.value).length;
      } catch {
        // the frame-line text form
      }
      return say("frames", { frames });
    }
    const { value } = hash;
    return value.length > 16 ? `${value.slice(0, 8)}…${value.slice(-4)}` : value;
  }

  function partnersOf(answer) {
    return (answer.partners || []).map((row) => ({ ...row, name: row.partner || "" }));
  }

  function when(moment) {
    const date = new Date(moment);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString(LANGUAGE, { dateStyle: "medium", timeStyle: "short" });
  }

  // A withdrawn hash: how many of the partners following the list have applied it, and when.
  function applied(withdrawal) {
    if (!withdrawal) return null;
    const times = (withdrawal.partners || []).map(({ partner, at }) => `${partner}: ${when(at)}`);
    if (!withdrawal.of) return element("span", { class: "applied", text: say("applied_here") });
    const line = say("applied", { applied: withdrawal.applied_by ?? 0, partners: withdrawal.of });
    return element("span", { class: "applied", text: times.length ? `${line} (${times.join("; ")})` : line });
  }

  function render(answer) {
    hashes = answer.hashes || [];
    $("status-case").textContent = answer.case || opened.case;
    const counts = ["active", "received", "withdrawn"]
      .map((state) => [state, hashes.filter((hash) => hash.state === state).length])
      .filter(([, count]) => count > 0);
    $("summary").textContent = counts.map(([state, count]) => say(`summary_${state}`, { count })).join(", ");
    const states = $("hash-states");
    states.replaceChildren(
      ...hashes.map((hash) =>
        element(
          "li",
          { class: `state-${hash.state}` },
          element("span", { class: "signal", text: signalWords(hash.signal) }),
          " ",
          element("code", { text: short(hash) }),
          element("span", { class: "state", text: stateWords(hash.state) }),
          applied(hash.withdrawal),
        ),
      ),
    );
    const rows = partnersOf(answer);
    $("no-partners").hidden = rows.length > 0;
    $("partners").replaceChildren(
      ...rows.map((row) =>
        element(
          "li",
          {},
          element("strong", { text: row.name }),
          element(
            "dl",
            {},
            ...["matches", "pending_review", "blocked", "not_blocked"].map((count) =>
              element("div", {}, element("dt", { text: say(count) }), element("dd", { text: String(row[count] ?? 0) })),
            ),
          ),
        ),
      ),
    );
    const live = hashes.filter((hash) => hash.state !== "withdrawn");
    $("withdraw-hashes").replaceChildren(
      ...live.map((hash, index) =>
        element(
          "li",
          { class: "choice" },
          element("input", { type: "checkbox", id: `withdraw-${index}`, value: String(hashes.indexOf(hash)) }),
          element("label", { for: `withdraw-${index}` }, `${signalWords(hash.signal)} `, element("code", { text: short(hash) })),
        ),
      ),
    );
    $("withdraw-form").hidden = live.length === 0;
    const status = $("status");
    status.hidden = false;
  }

  async function load() {
    const { status, body, answer } = await asked(`${CASES}/${encodeURIComponent(opened.case)}`, {
      headers: { "X-Case-Pin": opened.pin },
    });
    if (status === 200 && body) return render(body);
    // 403: a wrong case number or PIN (the API does not say which)
    $("status").hidden = true;
    if (status === 429) return show("follow-error", waiting("locked", answer)).focus();
    if (status === 401 || status === 403 || status === 404) return show("follow-error", say("wrong")).focus();
    show("follow-error", say("unavailable")).focus();
  }

  $("follow-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const given = { case: $("case").value.trim(), pin: $("pin").value.trim() };
    if (!given.case || !given.pin) return show("follow-error", say("wrong")).focus();
    show("follow-error", "");
    opened = given;
    await load();
    if (!$("status").hidden) $("status").focus();
  });

  for (const scope of document.querySelectorAll("input[name=scope]")) {
    scope.addEventListener("change", () => {
      $("withdraw-choice").hidden = !$("withdraw-some").checked;
    });
  }

  let chosen = null; // the hashes the confirmation is about (null: the whole case)

  $("withdraw-form").addEventListener("submit", (event) => {
    event.preventDefault();
    show("withdraw-error", "");
    $("withdraw-done").textContent = "";
    if ($("withdraw-some").checked) {
      const ticked = [...document.querySelectorAll("#withdraw-hashes input:checked")];
      if (ticked.length === 0) return show("withdraw-error", say("choose_some")).focus();
      chosen = ticked.map((box) => hashes[Number(box.value)]);
      $("confirm-text").textContent = say(chosen.length === 1 ? "confirm_one" : "confirm_some", { count: chosen.length });
    } else {
      chosen = null;
      const count = hashes.filter((hash) => hash.state !== "withdrawn").length;
      $("confirm-text").textContent = counted("confirm_all", count);
    }
    // Not modal: the quick exit above stays within reach while the person decides.
    $("withdraw").disabled = true;
    $("confirm").show();
    $("confirm-no").focus();
  });

  function closeConfirmation() {
    $("confirm").close();
    $("withdraw").disabled = false;
  }

  $("confirm-no").addEventListener("click", () => {
    closeConfirmation();
    $("withdraw").focus();
  });
  $("confirm").addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    closeConfirmation();
    $("withdraw").focus();
  });

  $("confirm-yes").addEventListener("click", async () => {
    closeConfirmation();
    const request = {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Case-Pin": opened.pin },
      body: JSON.stringify(chosen ? { hashes: chosen.map(({ signal, value }) => ({ signal, value })) } : {}),
    };
    const { status, body, answer } = await asked(`${CASES}/${encodeURIComponent(opened.case)}/withdrawal`, request);
    if (status === 200 && body) {
      render(body); // the case's status after the withdrawal
      $("withdraw-done").textContent = say("withdrawn");
      $("status").focus();
      return;
    }
    if (status === 429) return show("withdraw-error", waiting("locked", answer)).focus();
    if (status === 401 || status === 403) return show("withdraw-error", say("wrong")).focus();
    const refusal = code(status, body);
    if (refusal === "not_found") return show("withdraw-error", say("withdraw_not_found"), reason(body)).focus();
    if (refusal === "bad_request" || refusal === "invalid") {
      return show("withdraw-error", say("withdraw_invalid"), reason(body)).focus();
    }
    show("withdraw-error", say("unavailable")).focus();
  });
}

if (document.body.dataset.page === "start") startPage();
if (document.body.dataset.page === "follow") followPage();
