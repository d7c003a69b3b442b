// Small DOM helpers shared by every view.

/** Create an element: h("button", {class: "x", onclick: f}, "text", child...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Announce a short message to everyone (visible toast, read by screen readers). */
export function say(message, kind = "info") {
  const box = document.getElementById("status");
  box.textContent = message;
  box.className = `toast show ${kind}`;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => (box.className = "toast"), kind === "error" ? 8000 : 4000);
}

/** Ask a yes/no question in a modal dialog; resolves true for yes. */
export function confirmAction(text, yesLabel = "Delete") {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-yes").textContent = yesLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true }));
}

const size = (bytes) => (bytes < 1e6 ? `${Math.max(1, Math.round(bytes / 1e3))} kB` : `${(bytes / 1e6).toFixed(1)} MB`);

/**
 * A progress bar for sending ``files`` in one upload: ``update(loaded, total)`` with the upload's
 * bytes counts the files sent so far; ``done(text)`` fills the bar and says what happened.
 */
export function uploadProgress(files, noun = ["file", "files"]) {
  const words = noun[files.length === 1 ? 0 : 1];
  const bar = h("progress", { max: 1, value: 0, "aria-label": "Upload progress" });
  const text = h("span", { "aria-live": "polite" }, `Sending ${files.length} ${words}…`);
  const el = h("div", { class: "upload-progress", "data-testid": "upload-progress" }, bar, text);
  const sizes = files.map((f) => f.size);
  let total = sizes.reduce((a, b) => a + b, 0);
  const describe = (loaded) => {
    // a file counts as sent once the body has gone past its last byte (its multipart headers come first)
    let end = 0;
    let sent = 0;
    for (const s of sizes) if ((end += s) <= loaded) sent += 1;
    if (loaded >= total) sent = files.length;
    return `${sent} of ${files.length} ${words} sent (${size(loaded)} of ${size(total)})`;
  };
  return {
    el,
    update(loaded, bytes) {
      total = bytes;
      bar.max = total;
      bar.value = loaded;
      text.textContent = describe(loaded) + (loaded >= total ? "; processing…" : "");
    },
    done(result) {
      bar.max = total || 1;
      bar.value = bar.max;
      text.textContent = `${describe(total)}. ${result}`;
    },
    failed() {
      text.textContent = "Upload failed";
    },
  };
}

/** "3 added, 1 skipped" for an enrolment's per-file report. */
export function fileCounts(files) {
  const added = (files || []).filter((f) => f.status === "added").length;
  return `${added} added, ${(files || []).length - added} skipped`;
}

/** Why a face got no name, in words (the API's ``reason`` codes; plain "no match" says nothing more). */
export const REASONS = {
  too_small: "face too small",
  blurry: "face blurred",
  turned: "face turned away",
  tilted_up_down: "face tilted",
  tilted_sideways: "face tilted",
  too_dark: "too dark",
  too_bright: "too bright",
  greyscale: "black-and-white picture",
  compressed: "picture too compressed",
  low_margin: "two people look alike",
  tie: "two people look alike",
  no_one_enrolled: "no one enrolled",
};

/** The confidence (P(the name is right)) from which a match shows green; below it, amber. */
export const CONFIDENT = 0.9;

/**
 * A face's decision as the overlay shows it: label, confidence (0-1), colour class and the reason
 * it has no name. Takes a frame's decision or a stream track's (``status`` match, unknown, or
 * pending: not decided yet). The confidence is the calibrated probability that the name is right:
 * green from 90%, amber below (right about as often as it says), red for unknown.
 */
export function describeDecision(decision) {
  if (decision && decision.status === "pending") {
    return { name: "pending", label: "…", confidence: decision.confidence || 0, tone: "pending", reason: null };
  }
  if (!decision || decision.status !== "match") {
    const reason = (decision && REASONS[decision.reason]) || null;
    const label = reason ? `Unknown — ${reason}` : "Unknown";
    return { name: "unknown", label, confidence: decision ? decision.confidence : 0, tone: "low", reason: decision?.reason || null };
  }
  const c = decision.confidence;
  return { name: decision.name, label: decision.name, confidence: c, tone: c >= CONFIDENT ? "high" : "mid", reason: null };
}

/** "87%" */
export const percent = (x) => `${Math.round(x * 100)}%`;

/** One positioned face box with its label, readable in the DOM by tests and assistive tools. */
export function faceBox(box, frameWidth, frameHeight, { name, label, confidence, tone, reason }, extra = {}, prefix = "") {
  const el = h(
    "div",
    {
      class: `face ${tone}`,
      "data-testid": "face",
      "data-name": name,
      "data-confidence": confidence.toFixed(2),
      "data-reason": reason || "",
      role: "img",
      "aria-label":
        name === "unknown" ? `${label} face` : name === "pending" ? "Face being checked" : `${label}, ${percent(confidence)} confidence`,
      ...extra,
    },
    h("span", { class: "label" }, prefix + (name === "unknown" ? label : name === "pending" ? "… checking" : `${label} ${percent(confidence)}`)),
  );
  placeBox(el, box, frameWidth, frameHeight);
  return el;
}

/** Position an absolutely placed element over a frame of the given size, in percentages. */
export function placeBox(el, box, frameWidth, frameHeight) {
  el.style.left = `${(box.x1 / frameWidth) * 100}%`;
  el.style.top = `${(box.y1 / frameHeight) * 100}%`;
  el.style.width = `${((box.x2 - box.x1) / frameWidth) * 100}%`;
  el.style.height = `${((box.y2 - box.y1) / frameHeight) * 100}%`;
}
