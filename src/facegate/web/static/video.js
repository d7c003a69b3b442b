// Video: upload a video file, follow its analysis on the server (queued, running with progress
// and ETA, done or failed), then see who appears when: the player, one row per person with bars
// over the video's duration (a bar seeks the player to its start), each person's best frame,
// unknown groups with "Enrol as…", and the result as JSON or CSV.
//
// Everything that needs the API key is read with fetch (the key in a header, never in a URL): with
// a key stored, the video itself is fetched into a Blob for the <video> element.

import { api, apiKey, apiResponse, apiUpload, collection, showProtectedImage, UrlBag } from "./api.js";
import { confirmAction, h, say, uploadProgress } from "./dom.js";
import { createWithPhotos } from "./enrol.js";

const POLL_MS = 1000; // a queued or running job
const ACTIVE = new Set(["queued", "running"]);
const STATE_TEXT = { queued: "queued", running: "running", done: "done", failed: "failed", cancelled: "cancelled" };

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

const path = (id, rest = "") => `/v1/videos/${encodeURIComponent(id)}${rest}`;

/** "5.0" seconds, one decimal. */
const secs = (s) => (Number(s) || 0).toFixed(1);

/** "1 min 5 s" or "12 s" for an ETA. */
export function duration(s) {
  const n = Math.max(0, Math.round(Number(s) || 0));
  return n >= 60 ? `${Math.floor(n / 60)} min ${n % 60} s` : `${n} s`;
}

/** The progress line of a job: "42% · about 12 s left · 30.1 frames/s". */
export function describeProgress(job) {
  const pct = Math.round((Number(job.progress) || 0) * 100);
  if (job.state === "queued") return "Waiting in the queue…";
  if (job.state === "running") {
    const parts = [`${pct}%`];
    if (job.eta_s !== null && job.eta_s !== undefined) parts.push(`about ${duration(job.eta_s)} left`);
    if (job.processing_fps) parts.push(`${Number(job.processing_fps).toFixed(1)} frames/s`);
    return parts.join(" · ");
  }
  if (job.state === "done") return "100% · done";
  if (job.state === "cancelled") return `Cancelled at ${pct}%`;
  return `Failed at ${pct}%`;
}

/** "The file is damaged: nothing decodes after 8.7 s of 14.9 s (video_truncated)", or "" for a whole file. */
export function describeTruncation(video) {
  if (!video?.truncated) return "";
  const at = secs(video.truncated_at_s);
  const of = video.duration_s ? ` of ${secs(video.duration_s)} s` : "";
  return `Truncated: nothing decodes after ${at} s${of}; the timeline covers 0–${at} s (${video.truncated_code || "truncated"}).`;
}

/** Save ``blob`` as ``filename`` through a temporary link. */
function save(blob, filename, bag) {
  const a = h("a", { href: bag.add(blob), download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

export function render(root, openId) {
  const page = new AbortController(); // aborted when the page is left
  const jobs = new Map(); // id -> {job, el, update}
  const bag = new UrlBag(); // thumbnails and downloads of the open timeline
  let timeline = null; // {id, close()}

  const input = h("input", { type: "file", id: "video-file", accept: "video/*", "aria-describedby": "video-hint" });
  const zone = h(
    "div",
    { class: "dropzone", id: "video-drop" },
    h("p", {}, "Drop a video file here, or "),
    h("label", { for: "video-file", class: "button" }, "choose a video"),
    input,
    h("p", { class: "muted hint", id: "video-hint" }, `People are recognised against the collection “${collection.get()}”.`),
  );
  const sending = h("div", { id: "video-upload", "aria-live": "polite" });
  const summary = h("p", { class: "muted", id: "video-summary" }, "Loading…");
  const listError = h("p", { class: "message", role: "alert" });
  const list = h("ul", { class: "video-jobs", id: "video-jobs", "aria-labelledby": "video-jobs-title" });
  const view = h("section", { id: "video-timeline", "aria-labelledby": "video-timeline-title", hidden: true });

  root.append(
    h("h1", {}, "Video"),
    h("p", {}, "Find who appears in a video file, and when. The server analyses it in the background; you can leave this page meanwhile."),
    zone,
    sending,
    h("h2", { id: "video-jobs-title" }, "Videos"),
    summary,
    listError,
    list,
    view,
  );

  // ---------------------------------------------------------------------------------------------
  // uploading

  async function upload(file) {
    if (!file) return;
    const progress = uploadProgress([file], ["video", "videos"]);
    const note = h("p", { class: "message", role: "alert" });
    sending.replaceChildren(h("p", { class: "upload-name" }, file.name), progress.el, note);
    const form = new FormData();
    form.append("file", file, file.name || "video");
    try {
      const job = await apiUpload(`/v1/videos?collection=${encodeURIComponent(collection.get())}`, form, progress.update);
      progress.done("Queued for analysis.");
      say(`${job.name || file.name} uploaded; analysing it`);
      showJob(job, true);
      follow(job.id);
      counts();
    } catch (err) {
      if (err.name === "AbortError") return;
      progress.failed();
      note.textContent = `${file.name} was not accepted: ${err.message}`;
    } finally {
      input.value = "";
    }
  }

  input.addEventListener("change", () => upload(input.files[0]));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    upload(e.dataTransfer.files[0]);
  });

  // ---------------------------------------------------------------------------------------------
  // the list of jobs

  function counts() {
    summary.textContent = jobs.size ? `${jobs.size} ${jobs.size === 1 ? "video" : "videos"}` : "No videos yet: upload one above.";
  }

  function showJob(job, first = false) {
    let entry = jobs.get(job.id);
    if (!entry) {
      entry = jobItem(job);
      jobs.set(job.id, entry);
      if (first) list.prepend(entry.el);
      else list.append(entry.el);
    }
    entry.update(job);
    return entry;
  }

  function jobItem(first) {
    let job = first;
    const id = job.id;
    const title = h("h3", { class: "video-name" });
    const badge = h("span", { class: "state", "data-testid": "video-state" });
    const bar = h("progress", { max: 1, value: 0 });
    const text = h("span", { class: "progress-text", "data-testid": "video-progress" });
    const about = h("p", { class: "muted where" });
    const problem = h("p", { class: "video-problem", role: "alert", "data-testid": "video-error" });
    const damaged = h("p", { class: "video-problem", "data-testid": "video-truncated", hidden: true });
    const openButton = h("button", { type: "button" }, "Show timeline");
    const stopButton = h("button", { type: "button", class: "danger" }, "Cancel processing");
    const deleteButton = h("button", { type: "button", class: "danger" }, "Delete");
    const message = h("p", { class: "message", role: "alert" });
    const el = h(
      "li",
      { class: "video-job", "data-testid": "video-job", "data-id": id },
      h("div", { class: "title" }, title, badge),
      h("div", { class: "job-progress" }, bar, text),
      about,
      problem,
      damaged,
      h("div", { class: "row actions" }, openButton, stopButton, deleteButton),
      message,
    );

    function update(next) {
      job = next;
      const name = job.name || id;
      el.dataset.state = job.state;
      title.textContent = name;
      badge.textContent = STATE_TEXT[job.state] || job.state;
      badge.className = `state ${job.state}`;
      bar.value = job.state === "done" ? 1 : Number(job.progress) || 0;
      bar.setAttribute("aria-label", `Analysis of ${name}`);
      text.textContent = describeProgress(job);
      const v = job.video;
      const facts = [`collection ${job.collection}`];
      if (v) facts.unshift(`${secs(v.duration_s)} s`, `${v.width}×${v.height}`, `${Number(v.fps || 0).toFixed(0)} fps`);
      about.textContent = facts.join(" · ");
      problem.textContent =
        job.state === "failed" ? `${job.error_code || "failed"}${job.error_detail ? `: ${job.error_detail}` : ""}` : "";
      damaged.textContent = job.state === "done" ? describeTruncation(v) : "";
      damaged.hidden = !damaged.textContent;
      if (damaged.textContent) badge.textContent = "done · truncated";
      openButton.hidden = job.state !== "done";
      openButton.setAttribute("aria-label", `Show the timeline of ${name}`);
      stopButton.hidden = !ACTIVE.has(job.state);
      stopButton.setAttribute("aria-label", `Cancel processing ${name}`);
      deleteButton.hidden = ACTIVE.has(job.state);
      deleteButton.setAttribute("aria-label", `Delete ${name}`);
    }

    openButton.addEventListener("click", () => openTimeline(job, true));

    let busy = false;
    async function remove(cancelling) {
      if (busy) return;
      busy = true;
      message.textContent = "";
      const name = job.name || id;
      try {
        const question = cancelling
          ? `Stop analysing “${name}”? The video stays in the list as cancelled.`
          : `Delete the video “${name}” and its results? This cannot be undone.`;
        if (!(await confirmAction(question, cancelling ? "Stop processing" : "Delete video"))) return;
        await api(path(id), { method: "DELETE" });
        if (cancelling) {
          say(`Stopped analysing ${name}`);
          refreshOne(id);
        } else {
          say(`${name} deleted`);
          if (timeline?.id === id) timeline.close();
          el.remove();
          jobs.delete(id);
          counts();
          root.querySelector("h1")?.focus();
        }
      } catch (err) {
        message.textContent = `Cannot ${cancelling ? "cancel" : "delete"} ${name}: ${err.message}`;
      } finally {
        busy = false;
      }
    }
    stopButton.addEventListener("click", () => remove(true));
    deleteButton.addEventListener("click", () => remove(false));
    return { el, update, get job() { return job; } };
  }

  async function refreshOne(id) {
    try {
      const job = await api(path(id), { signal: page.signal });
      if (jobs.has(id)) showJob(job);
      return job;
    } catch (err) {
      if (err.status === 404 && jobs.has(id)) {
        jobs.get(id).el.remove();
        jobs.delete(id);
        counts();
      }
      return null;
    }
  }

  const following = new Set();
  /** Poll a queued or running job every second until it ends; a finished upload opens its timeline. */
  async function follow(id) {
    if (following.has(id)) return;
    following.add(id);
    try {
      while (!page.signal.aborted) {
        await sleep(POLL_MS, page.signal);
        if (page.signal.aborted || !jobs.has(id)) return;
        const job = await refreshOne(id);
        if (!job) continue;
        if (!ACTIVE.has(job.state)) {
          if (job.state === "done") {
            say(`${job.name} analysed`);
            if (!timeline) openTimeline(job, false);
          } else if (job.state === "failed") say(`${job.name} could not be analysed`, "error");
          return;
        }
      }
    } finally {
      following.delete(id);
    }
  }

  async function load() {
    let all;
    try {
      all = await api("/v1/videos", { signal: page.signal });
    } catch (err) {
      if (err.name === "AbortError") return;
      summary.textContent = "";
      listError.textContent = `Cannot list videos: ${err.message}`;
      return;
    }
    all = Array.isArray(all) ? all : all.items || [];
    listError.textContent = "";
    for (const job of all) {
      showJob(job);
      if (ACTIVE.has(job.state)) follow(job.id);
    }
    counts();
    if (openId) {
      const job = jobs.get(openId)?.job;
      if (job?.state === "done") openTimeline(job, true);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // the timeline of a finished job

  function openTimeline(job, focus) {
    timeline?.close();
    const stop = new AbortController();
    const signal = AbortSignal.any([page.signal, stop.signal]);
    const name = job.name || job.id;
    const heading = h("h2", { id: "video-timeline-title", tabindex: "-1" }, `Who appears in ${name}`);
    const status = h("p", { class: "muted", "aria-live": "polite" }, "Loading the result…");
    const warning = h("p", { class: "video-problem", role: "alert", "data-testid": "timeline-truncated", hidden: true });
    const player = h("video", { controls: true, preload: "metadata", playsinline: true, "aria-label": `Video ${name}`, "data-testid": "video-player" });
    const rows = h("div", { class: "timeline", "data-testid": "timeline" });
    const downloads = h("div", { class: "row downloads" });
    const closeButton = h("button", { type: "button", class: "quiet" }, "Close timeline");
    view.replaceChildren(
      h("div", { class: "title" }, heading, closeButton),
      h("div", { class: "player" }, player),
      status,
      warning,
      rows,
      downloads,
    );
    view.hidden = false;
    view.dataset.id = job.id;
    timeline = {
      id: job.id,
      close() {
        stop.abort();
        player.pause();
        player.removeAttribute("src");
        player.load();
        bag.release();
        view.replaceChildren();
        view.hidden = true;
        timeline = null;
      },
    };
    closeButton.addEventListener("click", () => {
      const opener = jobs.get(job.id)?.el.querySelector(".actions button");
      timeline?.close();
      opener?.focus();
    });
    if (focus) heading.focus();

    // the video: straight from the server (HTTP Range) without a key; with one, as a Blob
    (async () => {
      try {
        if (apiKey.get()) {
          const response = await apiResponse(path(job.id, "/file"), { signal });
          player.src = bag.add(await response.blob());
        } else {
          player.src = path(job.id, "/file");
        }
      } catch (err) {
        if (err.name !== "AbortError") status.textContent = `The video cannot be played: ${err.message}`;
      }
    })();

    for (const format of ["json", "csv"]) {
      const button = h("button", { type: "button", class: "quiet", "data-format": format }, `Download ${format.toUpperCase()}`);
      button.addEventListener("click", async () => {
        try {
          const response = await apiResponse(path(job.id, `/result${format === "csv" ? "?format=csv" : ""}`), { signal });
          const base = (name.replace(/\.[^.]+$/, "") || "video").replace(/[^\w.-]+/g, "_");
          save(await response.blob(), `${base}-faces.${format}`, bag);
        } catch (err) {
          if (err.name !== "AbortError") say(`Cannot download the ${format.toUpperCase()}: ${err.message}`, "error");
        }
      });
      downloads.append(button);
    }

    (async () => {
      let result;
      try {
        result = await api(path(job.id, "/result"), { signal });
      } catch (err) {
        if (err.name !== "AbortError") status.textContent = `No result: ${err.message}`;
        return;
      }
      const v = result.video || {};
      const people = result.people || [];
      const unknown = result.unknown || [];
      const total = Number(v.duration_s) || Math.max(0.001, ...[...people, ...unknown].flatMap((g) => g.segments.map((s) => s.end_s)));
      status.textContent =
        `${people.length} ${people.length === 1 ? "person" : "people"} recognised, ${unknown.length} unknown ` +
        `${unknown.length === 1 ? "face" : "faces"} · ${secs(v.duration_s)} s of video` +
        (result.processing_s ? `, analysed in ${secs(result.processing_s)} s` : "");
      warning.textContent = describeTruncation(v);
      warning.hidden = !warning.textContent;
      // the part of the video that did not decode: hatched on every lane
      const decoded = v.truncated ? Math.min(100, (Number(v.truncated_at_s) / total) * 100) : 100;
      if (!people.length && !unknown.length) rows.append(h("p", { class: "muted" }, "Nobody appears in this video."));
      if (people.length) rows.append(h("h3", {}, "People"), h("ul", { class: "tracks" }, people.map((g) => row(g, false))));
      if (unknown.length) rows.append(h("h3", {}, "Unknown faces"), h("ul", { class: "tracks" }, unknown.map((g) => row(g, true))));

      function row(group, isUnknown) {
        const label = isUnknown ? group.label : group.name;
        const thumb = h("img", { class: "thumb", alt: `Best frame of ${label}`, width: 64, height: 64 });
        if (group.best_frame) {
          const { t_s: t, box } = group.best_frame;
          const query = new URLSearchParams({ t_s: String(t) });
          if (box) query.set("box", box.map((n) => Math.round(n)).join(","));
          showProtectedImage(thumb, path(job.id, `/frame.jpg?${query}`), bag).catch(() => thumb.removeAttribute("src"));
        }
        const lane = h("div", { class: "lane", role: "group", "aria-label": `When ${label} appears` });
        if (decoded < 100) {
          const lost = h("span", { class: "undecoded", title: "not decoded (the file is truncated)", "aria-hidden": "true" });
          Object.assign(lost.style, {
            position: "absolute",
            top: "0",
            bottom: "0",
            left: `${decoded}%`,
            width: `${100 - decoded}%`,
            background: "repeating-linear-gradient(135deg, #0000 0 5px, #8883 5px 10px)",
            pointerEvents: "none",
          });
          lane.append(lost);
        }
        for (const s of group.segments || []) {
          const text = `${label} ${secs(s.start_s)}–${secs(s.end_s)} s`;
          const bar = h("button", {
            type: "button",
            class: "segment",
            "aria-label": text,
            title: s.confidence !== undefined && s.confidence !== null ? `${text}, ${Math.round(s.confidence * 100)}% confidence` : text,
            "data-start": s.start_s,
            "data-end": s.end_s,
          });
          bar.style.left = `min(${Math.min(100, (s.start_s / total) * 100)}%, calc(100% - 6px))`; // a short bar at the end stays inside
          bar.style.width = `${Math.max(0, ((s.end_s - s.start_s) / total) * 100)}%`;
          bar.addEventListener("click", () => seek(s.start_s));
          lane.append(bar);
        }
        const facts = h("span", { class: "muted" }, `${secs(group.seconds)} s · ${Math.round((Number(group.share) || 0) * 100)}%`);
        const who = isUnknown ? h("span", { class: "name" }, label) : h("span", { class: "name" }, group.name);
        const item = h(
          "li",
          { class: isUnknown ? "track unknown" : "track", "data-testid": "timeline-row", "data-name": label },
          thumb,
          h("div", { class: "who" }, who, facts),
          lane,
        );
        if (isUnknown) item.append(enrolAction(group, label, who));
        return item;
      }
    })();

    function seek(t) {
      const go = () => {
        player.currentTime = t;
      };
      if (player.readyState >= 1) go();
      else player.addEventListener("loadedmetadata", go, { once: true });
    }

    /** "Enrol as…": a name, then the best frame (cropped to the face) becomes a new person. */
    function enrolAction(group, label, who) {
      const button = h("button", { type: "button", class: "quiet", "aria-label": `Enrol ${label} as…` }, "Enrol as…");
      const box = h("div", { class: "enrol-as" }, button);
      button.addEventListener("click", () => {
        const field = `enrol-${label.replace(/\W+/g, "-")}`;
        const nameInput = h("input", { id: field, required: true, maxlength: 200, autocomplete: "off" });
        const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
        const message = h("p", { class: "message", role: "alert" });
        const form = h(
          "form",
          { class: "row" },
          h("label", { for: field }, `Name for ${label}`),
          nameInput,
          h("button", { type: "submit" }, "Enrol"),
          cancel,
          message,
        );
        const close = () => {
          form.replaceWith(button);
          button.focus();
        };
        cancel.addEventListener("click", close);
        form.addEventListener("keydown", (e) => e.key === "Escape" && close());
        form.addEventListener("submit", async (e) => {
          e.preventDefault();
          message.textContent = "";
          const name = nameInput.value.trim();
          if (!name || !group.best_frame) return;
          form.querySelectorAll("button").forEach((b) => (b.disabled = true));
          try {
            const { t_s: t, box: face } = group.best_frame;
            const query = new URLSearchParams({ t_s: String(t) });
            if (face) query.set("box", face.map((n) => Math.round(n)).join(","));
            const response = await apiResponse(path(job.id, `/frame.jpg?${query}`), { signal });
            const photo = new File([await response.blob()], `${label}.jpg`, { type: "image/jpeg" });
            const person = await createWithPhotos(name, [photo]);
            who.textContent = `${label}: ${person.name}`;
            form.replaceWith(
              h("p", { class: "enrolled", role: "status" }, `Enrolled as `, h("a", { href: `#/people/${person.id}` }, person.name)),
            );
            say(`${person.name} enrolled from ${label}`);
          } catch (err) {
            if (err.name === "AbortError") return;
            message.textContent = `Not enrolled: ${err.message}`;
            form.querySelectorAll("button").forEach((b) => (b.disabled = false));
          }
        });
        button.replaceWith(form);
        nameInput.focus();
      });
      return box;
    }
  }

  load();
  return () => {
    timeline?.close();
    page.abort();
    bag.release();
  };
}
