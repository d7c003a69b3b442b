// Cameras: every camera the server watches, each with its live view (the server's MJPEG re-stream,
// boxes and names drawn by the server), its state, rates and the people in front of it now; add,
// edit and delete cameras (delete asks first).
//
// The live view is read with fetch(), so the API key travels in a header (an <img src> could not
// send it, and keys never go in URLs); the multipart stream is split into JPEGs here and each one
// is drawn on a <canvas>. Leaving the page aborts every request.

import { api, apiResponse, collection } from "./api.js";
import { confirmAction, h, percent, say } from "./dom.js";

const LIST_EVERY_MS = 2000; // camera states and rates
const LATEST_EVERY_MS = 1000; // who is in front of each camera
const RETRY_MS = 2000; // a view that could not be opened (camera starting, server restarting) tries again
const SNAPSHOT_EVERY_MS = 1000;
// A browser opens at most six HTTP/1.1 connections to one server and each MJPEG stream keeps one:
// beyond this many streams, views show the newest snapshot once a second instead.
const MAX_STREAMS = 3;
const MAX_PART_BYTES = 16 * 1024 * 1024; // a multipart stream that never yields a frame is given up
const DEFAULT_FPS = 5;
const MAX_FPS = 30;

const STATES = {
  live: "live",
  connecting: "connecting",
  down: "down",
  stopped: "stopped",
};

/** The server's problem detail, without the request-field prefix of validation errors. */
const detailOf = (err) => (err.code === "invalid_request" ? err.message.replace(/^body\.\w+: /, "") : err.message);

/** A signal aborted when either one is. */
const either = (a, b) => AbortSignal.any([a, b]);

/** Wait ``ms``, or less when ``signal`` aborts. */
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

/** What a camera's track shows: "Colin Powell (99%)", "Unknown person", or "…" while being checked. */
export function describeTrack(track) {
  if (track.decision === "match") return { text: `${track.name} (${percent(track.confidence)})`, tone: "match" };
  if (track.decision === "pending") return { text: "…", tone: "pending" };
  return { text: "Unknown person", tone: "unknown" };
}

function indexOf(buf, pattern, from = 0) {
  outer: for (let i = from; i <= buf.length - pattern.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (buf[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

const HEAD_END = [13, 10, 13, 10]; // \r\n\r\n
const JPEG_END = [0xff, 0xd9];

/**
 * Read a ``multipart/x-mixed-replace`` body of JPEGs, calling ``onJpeg(bytes)`` for each part:
 * by its Content-Length, or up to the JPEG end marker when a part has none. Resolves when the
 * stream ends; rejects when it is aborted or broken.
 */
export async function readMultipart(body, onJpeg) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = new Uint8Array(0);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf);
      joined.set(value, buf.length);
      buf = joined;
      for (;;) {
        const headEnd = indexOf(buf, HEAD_END);
        if (headEnd < 0) break;
        const head = decoder.decode(buf.subarray(0, headEnd));
        const length = /content-length:\s*(\d+)/i.exec(head);
        const start = headEnd + HEAD_END.length;
        let end;
        if (length) {
          end = start + Number(length[1]);
          if (buf.length < end) break;
        } else {
          const marker = indexOf(buf, JPEG_END, start);
          if (marker < 0) break;
          end = marker + JPEG_END.length;
        }
        onJpeg(buf.slice(start, end));
        buf = buf.slice(end); // the CRLF before the next boundary stays in front of the next head
      }
      if (buf.length > MAX_PART_BYTES) throw new Error("the stream sends no frames");
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** A <canvas> that shows the newest JPEG given to it (frames that arrive while one decodes are skipped). */
function canvasView(canvas) {
  const ctx = canvas.getContext("2d");
  let next = null;
  let busy = false;
  let frames = 0;
  async function drain() {
    busy = true;
    while (next) {
      const blob = next;
      next = null;
      try {
        const bitmap = await createImageBitmap(blob);
        if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
          canvas.width = bitmap.width;
          canvas.height = bitmap.height;
        }
        ctx.drawImage(bitmap, 0, 0);
        bitmap.close();
        frames += 1;
        canvas.dataset.frames = String(frames);
      } catch {
        /* a damaged frame: wait for the next one */
      }
    }
    busy = false;
  }
  return {
    show(data) {
      next = data instanceof Blob ? data : new Blob([data], { type: "image/jpeg" });
      if (!busy) drain();
    },
    clear() {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      frames = 0;
      delete canvas.dataset.frames;
    },
  };
}

export function render(root) {
  const page = new AbortController(); // aborted when the page is left
  const tiles = new Map(); // camera id -> tile
  let streams = 0; // MJPEG streams open now
  let collections = [];

  const summary = h("p", { class: "muted", id: "camera-summary", "aria-live": "polite" }, "Loading…");
  const grid = h("ul", { class: "cameras", id: "camera-list" });
  const listError = h("p", { class: "message", role: "alert" });

  // the add form
  const nameInput = h("input", { id: "camera-name", name: "name", required: true, maxlength: 200, autocomplete: "off" });
  const urlInput = h("input", {
    id: "camera-url",
    name: "url",
    required: true,
    maxlength: 2000,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "rtsp://192.168.1.20:554/stream1",
    "aria-describedby": "camera-url-hint",
  });
  const collectionSelect = h("select", { id: "camera-collection", name: "collection" }, h("option", { value: "default" }, "default"));
  const fpsInput = h("input", {
    id: "camera-fps",
    name: "fps",
    type: "number",
    min: 0.1,
    max: MAX_FPS,
    step: 0.1,
    value: DEFAULT_FPS,
    required: true,
    "aria-describedby": "camera-fps-hint",
  });
  const addError = h("p", { class: "message", id: "add-camera-error", role: "alert" });
  const addForm = h(
    "form",
    { class: "card", id: "add-camera" },
    h("label", { for: "camera-name" }, "Camera name"),
    nameInput,
    h("label", { for: "camera-url" }, "Camera URL"),
    urlInput,
    h(
      "p",
      { class: "muted hint", id: "camera-url-hint" },
      "An RTSP stream (rtsp://host:554/path), an HTTP MJPEG stream (http://host/video.mjpg) or a camera attached to the server (usb:0). ",
      "A user name and password may go in the URL (rtsp://user:password@host/…): they are stored, but shown as *** after saving.",
    ),
    h("label", { for: "camera-collection" }, "Recognise people of collection"),
    collectionSelect,
    h("label", { for: "camera-fps" }, "Frames per second"),
    fpsInput,
    h("p", { class: "muted hint", id: "camera-fps-hint" }, `Frames recognised each second, at most ${MAX_FPS}; more costs more processing.`),
    h("button", { type: "submit" }, "Add camera"),
    addError,
  );

  root.append(
    h("h1", {}, "Cameras"),
    h("p", {}, "Cameras the server watches on its own, all the time: who is in front of each one now, live. Boxes and names are drawn by the server."),
    summary,
    listError,
    grid,
    h("h2", {}, "Add a camera"),
    addForm,
  );

  async function fillCollections() {
    try {
      collections = (await api("/v1/collections", { signal: page.signal })).map((c) => c.name);
    } catch {
      collections = ["default"]; // e.g. a key without the admin scope
    }
    const keep = collectionSelect.value;
    collectionSelect.replaceChildren(...collections.map((n) => h("option", { value: n, selected: n === keep }, n)));
  }

  // ---------------------------------------------------------------------------------------------
  // polling

  /** Show the server's cameras; false when there is no point asking again (no key, or not allowed). */
  async function refresh() {
    let cameras;
    try {
      cameras = await api("/v1/cameras", { signal: page.signal });
    } catch (err) {
      if (err.name === "AbortError") return false;
      listError.textContent = `Cannot list cameras: ${err.message}`;
      summary.textContent = "";
      return err.status !== 401 && err.status !== 403; // a new key re-renders the page
    }
    if (page.signal.aborted) return;
    listError.textContent = "";
    summary.textContent = cameras.length
      ? `${cameras.length} ${cameras.length === 1 ? "camera" : "cameras"}`
      : "No cameras yet: add one below.";
    const seen = new Set();
    for (const camera of cameras) {
      seen.add(camera.id);
      let tile = tiles.get(camera.id);
      if (!tile) {
        tile = makeTile(camera);
        tiles.set(camera.id, tile);
        grid.append(tile.el);
      }
      tile.update(camera);
    }
    for (const [id, tile] of tiles) if (!seen.has(id)) removeTile(id, tile);
    return true;
  }

  function removeTile(id, tile) {
    tile.stop();
    tile.el.remove();
    tiles.delete(id);
  }

  async function pollList() {
    while (!page.signal.aborted) {
      if (!(await refresh())) return;
      await sleep(LIST_EVERY_MS, page.signal);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // one camera

  function makeTile(first) {
    let camera = first;
    const id = camera.id;
    const tileStop = new AbortController();
    const signal = either(page.signal, tileStop.signal);
    let viewAbort = null; // aborts the current stream (camera disabled, tile removed)

    const canvas = h("canvas", { width: 640, height: 480, role: "img", "data-testid": "camera-view" });
    const note = h("p", { class: "view-note" }, "Waiting for the picture…");
    const title = h("h2", { class: "camera-name" });
    const badge = h("span", { class: "state", "data-testid": "camera-state" });
    const problem = h("p", { class: "camera-problem", "data-testid": "camera-error" });
    const stats = h("p", { class: "stats", "data-testid": "camera-stats" });
    const where = h("p", { class: "muted where" });
    const people = h("ul", { class: "camera-people", "data-testid": "camera-people" });
    const message = h("p", { class: "message", role: "alert" });
    const editButton = h("button", { type: "button", class: "quiet" }, "Edit");
    const deleteButton = h("button", { type: "button", class: "danger" }, "Delete");
    const actions = h("div", { class: "row actions" }, editButton, deleteButton);
    const peopleTitle = h("h3", { class: "visually-hidden", id: `people-of-${id}` }, "In front of it now");
    people.setAttribute("aria-labelledby", `people-of-${id}`);
    const el = h(
      "li",
      { class: "camera", "data-testid": "camera", "data-id": id },
      h("div", { class: "view" }, canvas, note),
      h("div", { class: "about" }, h("div", { class: "title" }, title, badge), problem, stats, where, peopleTitle, people, actions, message),
    );
    const view = canvasView(canvas);

    function update(next) {
      const wasEnabled = camera.enabled;
      camera = next;
      el.dataset.name = camera.name;
      el.dataset.state = camera.state;
      title.textContent = camera.name;
      canvas.setAttribute("aria-label", `Live view of ${camera.name}`);
      peopleTitle.textContent = `In front of ${camera.name} now`;
      editButton.setAttribute("aria-label", `Edit ${camera.name}`);
      deleteButton.setAttribute("aria-label", `Delete ${camera.name}`);
      const state = STATES[camera.state] || "unknown";
      badge.textContent = state;
      badge.className = `state ${state}`;
      problem.textContent =
        camera.state === "down" ? `${camera.error_code || "down"}${camera.error_detail ? `: ${camera.error_detail}` : ""}` : "";
      const s = camera.stats || {};
      stats.textContent = camera.enabled
        ? `${(s.processed_fps ?? 0).toFixed(1)} fps processed · ${s.dropped ?? 0} dropped`
        : "Disabled";
      where.textContent = `${camera.url} · collection ${camera.collection} · at most ${camera.fps} fps`;
      if (wasEnabled && !camera.enabled) {
        viewAbort?.abort(); // stop watching a camera that stopped
        view.clear();
        people.replaceChildren();
      }
      if (!camera.enabled) note.textContent = "Stopped (disabled)";
      else if (camera.state === "down") note.textContent = "No picture: the camera is down"; // the next frame clears it
      else if (!wasEnabled) note.textContent = "Waiting for the picture…";
    }

    async function watch() {
      // the live view: the MJPEG stream while a slot is free, otherwise a snapshot a second
      while (!signal.aborted) {
        if (!camera.enabled) {
          await sleep(1000, signal);
          continue;
        }
        viewAbort = new AbortController();
        const viewSignal = either(signal, viewAbort.signal);
        try {
          if (streams < MAX_STREAMS) {
            streams += 1;
            try {
              const response = await apiResponse(`/v1/cameras/${encodeURIComponent(id)}/stream.mjpg`, { signal: viewSignal });
              await readMultipart(response.body, (jpeg) => {
                note.textContent = "";
                view.show(jpeg);
              });
            } finally {
              streams -= 1;
            }
          } else {
            const response = await apiResponse(`/v1/cameras/${encodeURIComponent(id)}/snapshot.jpg`, { signal: viewSignal });
            note.textContent = "";
            view.show(await response.blob());
            await sleep(SNAPSHOT_EVERY_MS, viewSignal);
            continue;
          }
        } catch (err) {
          if (signal.aborted) return;
          if (err.name !== "AbortError" && camera.enabled) {
            note.textContent = err.code === "camera_not_running" ? "Waiting for the picture…" : `No picture: ${err.message}`;
          }
        }
        await sleep(RETRY_MS, signal);
      }
    }

    async function watchPeople() {
      while (!signal.aborted) {
        if (camera.enabled) {
          try {
            const latest = await api(`/v1/cameras/${encodeURIComponent(id)}/latest`, { signal });
            showPeople(latest.tracks || []);
          } catch {
            /* the list's poll reports a camera that went away */
          }
        }
        await sleep(LATEST_EVERY_MS, signal);
      }
    }

    function showPeople(tracks) {
      if (signal.aborted || !camera.enabled) return;
      const items = tracks.length
        ? tracks.map((t) => {
            const { text, tone } = describeTrack(t);
            return h(
              "li",
              { class: tone, "data-track": t.track_id },
              text,
              tone === "pending" ? h("span", { class: "visually-hidden" }, " checking who this is") : null,
            );
          })
        : [h("li", { class: "nobody" }, "Nobody in view")];
      const text = (nodes) => nodes.map((n) => n.textContent).join("\n");
      if (text(items) !== text([...people.children])) people.replaceChildren(...items);
    }

    // editing: an inline form in place of the buttons
    editButton.addEventListener("click", () => {
      const field = (name) => `edit-${name}-${id}`;
      const name = h("input", { id: field("name"), value: camera.name, required: true, maxlength: 200, autocomplete: "off" });
      const url = h("input", {
        id: field("url"),
        value: camera.url,
        required: true,
        maxlength: 2000,
        autocomplete: "off",
        spellcheck: "false",
        "aria-describedby": field("url-hint"),
      });
      const fps = h("input", { id: field("fps"), type: "number", min: 0.1, max: MAX_FPS, step: 0.1, value: camera.fps, required: true });
      const enabled = h("input", { id: field("enabled"), type: "checkbox", checked: camera.enabled });
      const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
      const form = h(
        "form",
        { class: "edit", "data-testid": "edit-camera" },
        h("label", { for: field("name") }, "Name"),
        name,
        h("label", { for: field("url") }, "URL"),
        url,
        h("p", { class: "muted hint", id: field("url-hint") }, "Leave it as it is to keep the saved password."),
        h("label", { for: field("fps") }, "Frames per second"),
        fps,
        h("label", { class: "check", for: field("enabled") }, enabled, "Enabled (watch this camera)"),
        h("div", { class: "row" }, h("button", { type: "submit" }, "Save"), cancel),
      );
      const close = () => {
        form.replaceWith(actions);
        message.textContent = "";
        editButton.focus();
      };
      cancel.addEventListener("click", close);
      form.addEventListener("keydown", (event) => event.key === "Escape" && close());
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        message.textContent = "";
        const changes = {};
        if (name.value.trim() !== camera.name) changes.name = name.value.trim();
        if (url.value.trim() !== camera.url) changes.url = url.value.trim(); // unchanged: the stored password stays
        if (Number(fps.value) !== camera.fps) changes.fps = Number(fps.value);
        if (enabled.checked !== camera.enabled) changes.enabled = enabled.checked;
        if (!Object.keys(changes).length) return close();
        try {
          const saved = await api(`/v1/cameras/${encodeURIComponent(id)}`, { method: "PATCH", json: changes });
          update(saved);
          say(`Camera ${saved.name} saved`);
          close();
        } catch (err) {
          message.textContent = `Cannot save ${camera.name}: ${detailOf(err)}`;
        }
      });
      actions.replaceWith(form);
      name.focus();
    });

    let busy = false;
    deleteButton.addEventListener("click", async () => {
      if (busy) return;
      busy = true;
      message.textContent = "";
      try {
        const question = `Delete the camera “${camera.name}”? It stops being watched and its settings are forgotten.`;
        if (!(await confirmAction(question, "Delete camera"))) return;
        await api(`/v1/cameras/${encodeURIComponent(id)}`, { method: "DELETE" });
        say(`Camera ${camera.name} deleted`);
        removeTile(id, tile);
        summary.textContent = tiles.size ? `${tiles.size} ${tiles.size === 1 ? "camera" : "cameras"}` : "No cameras yet: add one below.";
        root.querySelector("h1")?.focus();
      } catch (err) {
        message.textContent = `Cannot delete ${camera.name}: ${detailOf(err)}`;
      } finally {
        busy = false;
      }
    });

    const tile = {
      el,
      update,
      stop() {
        tileStop.abort();
      },
    };
    update(camera);
    watch();
    watchPeople();
    return tile;
  }

  // ---------------------------------------------------------------------------------------------
  // adding

  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    addError.textContent = "";
    const body = {
      name: nameInput.value.trim(),
      url: urlInput.value.trim(),
      collection: collectionSelect.value || "default",
      fps: Number(fpsInput.value),
    };
    try {
      const created = await api("/v1/cameras", { method: "POST", json: body });
      say(`Camera ${created.name} added; it starts in a few seconds`);
      nameInput.value = "";
      urlInput.value = "";
      await refresh();
      tiles.get(created.id)?.el.querySelector("h2")?.scrollIntoView({ block: "nearest" });
    } catch (err) {
      addError.textContent = `Cannot add ${body.name || "the camera"}: ${detailOf(err)}`;
      (err.code === "invalid_camera_url" ? urlInput : nameInput).focus();
    }
  });

  fillCollections().then(() => {
    const current = collection.get();
    if (collections.includes(current)) collectionSelect.value = current;
  });
  pollList();
  return () => page.abort();
}
