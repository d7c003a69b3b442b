// Events: what the server saw, as it happens and afterwards, in four tabs. Live: the WebSocket feed
// (/v1/events/ws), filtered by reconnecting with query parameters; Pause keeps what arrives until
// Resume. History: a time range and filters, pages with the cursor ("Load more"), CSV export.
// Attendance: per day who was seen, first and last, and for how long; CSV and HR check-in downloads.
// Webhooks (admin): add (the secret is shown once), send a test event, enable/disable, delete (asks
// first), delivery counts and dead deliveries with their last error.
//
// An event with a face snapshot shows it (fetched when scrolled into view); a live camera source
// links to the Cameras page. The key travels in a header (fetch) or as a WebSocket subprotocol,
// never in a URL.

import {
  api,
  apiResponse,
  collection,
  inCollection,
  notifyUnauthorized,
  showProtectedImage,
  socketUrl,
  streamProtocols,
  UrlBag,
} from "./api.js";
import { confirmAction, h, percent, say } from "./dom.js";

const KINDS = {
  recognized: "Recognized",
  unknown: "Unknown face",
  left: "Left",
  camera_down: "Camera down",
  camera_up: "Camera up",
};
const TABS = { live: "Live", history: "History", attendance: "Attendance", webhooks: "Webhooks" };
const LIVE_MAX = 200; // events kept in the live list
const PAGE = 100; // events per History page
const WEBHOOK_POLL_MS = 2000; // the delivery counts, while the Webhooks tab is shown

/** "?a=1&b=2" of the non-empty ``params`` ("" when none). */
function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") q.set(name, value);
  const s = q.toString();
  return s ? `?${s}` : "";
}

const pad = (n) => String(n).padStart(2, "0");
/** Today's date here, "YYYY-MM-DD". */
function today() {
  const d = new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
/** Unix seconds of a datetime-local value (local time), or undefined when empty. */
const unix = (value) => (value ? new Date(value).getTime() / 1000 : undefined);
/** A <time> of Unix seconds ``ts`` in local time: the time of day, or date and time when ``long``. */
function timeOf(ts, long = false) {
  const d = new Date(ts * 1000);
  const text = long ? d.toLocaleString() : d.toLocaleTimeString();
  return h("time", { datetime: d.toISOString() }, text);
}
/** "1:05" (hours:minutes) of a number of seconds. */
export function hoursMinutes(seconds) {
  const minutes = Math.floor(Math.max(0, Number(seconds) || 0) / 60);
  return `${Math.floor(minutes / 60)}:${pad(minutes % 60)}`;
}
/** A day "YYYY-MM-DD" as "Tuesday, 1 December 2026" (the browser's language). */
function longDate(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

/** Save ``blob`` as ``filename`` through a temporary link. */
function save(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** GET ``path`` (in the current collection) with the key header and save the body as ``filename``. */
async function download(path, filename, what) {
  try {
    const response = await apiResponse(inCollection(path));
    save(await response.blob(), filename);
    say(`${what.charAt(0).toUpperCase()}${what.slice(1)} downloaded`);
  } catch (err) {
    say(`Cannot download the ${what}: ${err.message}`, "error");
  }
}

const kindBadge = (kind) => h("span", { class: `kind ${kind}`, "data-testid": "event-kind" }, KINDS[kind] || kind);

/** Who an event is about: the name, "Unknown person", or a camera event's detail. */
function who(e) {
  if (e.kind === "camera_down" || e.kind === "camera_up") return e.detail || "";
  return e.name || (e.kind === "unknown" || !e.person_id ? "Unknown person" : e.person_id);
}

/** An event's source: a live camera links to the Cameras page (events keep no snapshot of their own). */
function sourceOf(source, ctx) {
  if (source && source.startsWith("camera:")) {
    const id = source.slice("camera:".length);
    const name = ctx.cameras.get(id);
    return h("a", { href: "#/cameras", class: "source", title: `camera ${id}` }, name ? `${name} (camera)` : source);
  }
  return h("span", { class: "source" }, source || "");
}

/** The event's face snapshot, when it has one: loaded with the key header once it scrolls into view. */
function faceOf(e, ctx) {
  if (!e.has_snapshot) return null;
  const img = h("img", {
    class: "event-face",
    alt: e.kind === "unknown" || !e.name ? "Face of the unknown person" : `Face of ${e.name}`,
    width: 48,
    height: 48,
    "data-testid": "event-face",
  });
  img.dataset.src = `/v1/events/${encodeURIComponent(e.id)}/snapshot.jpg`;
  ctx.faces.observe(img);
  return img;
}

/** "box 10,20 to 110,140 (100×120 px)" of ``[x1, y1, x2, y2]`` in the source's pixels. */
function boxText(box) {
  if (!Array.isArray(box) || box.length !== 4) return "";
  const [x1, y1, x2, y2] = box.map((v) => Math.round(v));
  return `box ${x1},${y1} to ${x2},${y2} (${x2 - x1}×${y2 - y1} px)`;
}

/** The kind, source and person filters of a form (ids prefixed so two sets can live on the page). */
function filterFields(prefix, ctx) {
  const kind = h(
    "select",
    { id: `${prefix}-kind`, name: "kind" },
    h("option", { value: "" }, "Every kind"),
    ...Object.entries(KINDS).map(([value, text]) => h("option", { value }, text)),
  );
  const source = h("input", {
    id: `${prefix}-source`,
    name: "source",
    list: "event-sources",
    maxlength: 200,
    autocomplete: "off",
    placeholder: "camera:…",
  });
  const person = h("select", { id: `${prefix}-person`, name: "person_id" }, h("option", { value: "" }, "Anyone"));
  const fillPeople = () =>
    person.replaceChildren(h("option", { value: "" }, "Anyone"), ...ctx.people.map((p) => h("option", { value: p.id }, p.name)));
  ctx.ready.then(fillPeople);
  const field = (id, text, input) => h("div", { class: "field" }, h("label", { for: id }, text), input);
  return {
    fields: [field(`${prefix}-kind`, "Kind", kind), field(`${prefix}-source`, "Source", source), field(`${prefix}-person`, "Person", person)],
    values: () => ({ kind: kind.value, source: source.value.trim(), person_id: person.value }),
  };
}

/** One event as a list item (Live). */
function eventItem(e, ctx) {
  const box = boxText(e.box);
  return h(
    "li",
    { class: `event ${e.kind}`, "data-testid": "event", "data-id": e.id, "data-kind": e.kind, "data-name": e.name || "" },
    faceOf(e, ctx),
    timeOf(e.ts),
    kindBadge(e.kind),
    h("span", { class: "who" }, who(e)),
    e.confidence !== null && e.confidence !== undefined ? h("span", { class: "confidence", title: "confidence" }, percent(e.confidence)) : null,
    sourceOf(e.source, ctx),
    box ? h("span", { class: "box muted" }, box) : null,
  );
}

/** One event as a table row (History). */
function eventRow(e, ctx) {
  const details = [boxText(e.box), e.kind.startsWith("camera_") ? "" : e.detail || ""].filter(Boolean).join("; ");
  return h(
    "tr",
    { "data-testid": "history-event", "data-id": e.id, "data-kind": e.kind, "data-name": e.name || "" },
    h("td", {}, faceOf(e, ctx)),
    h("td", {}, timeOf(e.ts, true)),
    h("td", {}, kindBadge(e.kind)),
    h("td", {}, who(e)),
    h("td", {}, e.confidence !== null && e.confidence !== undefined ? percent(e.confidence) : ""),
    h("td", {}, sourceOf(e.source, ctx)),
    h("td", { class: "muted" }, details),
  );
}

/** A table with a caption inside a region that scrolls sideways on its own (narrow screens). */
function table(caption, headings, body, id) {
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": caption, tabindex: 0 },
    h("table", { id }, h("caption", { class: "visually-hidden" }, caption), h("thead", {}, h("tr", {}, ...headings.map((t) => h("th", { scope: "col" }, t)))), body),
  );
}

// ---- Live ------------------------------------------------------------------------------------

function liveTab(panel, ctx) {
  const filters = filterFields("live", ctx);
  const form = h("form", { class: "filters", id: "live-filters" }, ...filters.fields, h("button", { type: "submit" }, "Apply filters"));
  const pause = h("button", { type: "button", id: "events-pause", class: "quiet", "aria-pressed": "false" }, "Pause");
  const state = h("span", { class: "feed-state", id: "live-state", "data-state": "connecting", role: "status" }, "Connecting…");
  const empty = h("p", { class: "muted", id: "live-empty" }, "Waiting for events… Earlier ones are under History.");
  const list = h("ol", { class: "events", id: "live-events", "aria-label": "Live events, newest first" });
  panel.append(h("h2", {}, "Live feed"), form, h("div", { class: "row feed-bar" }, pause, state), empty, list);

  let socket = null;
  let generation = 0;
  let retries = 0;
  let timer = null;
  let stopped = false;
  let paused = false;
  let held = [];
  let seen = new Set();
  let lastId = null;

  const setState = (name, text) => {
    state.dataset.state = name;
    state.textContent = text;
  };
  const show = (e) => {
    empty.hidden = true;
    list.prepend(eventItem(e, ctx));
    while (list.children.length > LIVE_MAX) list.lastElementChild.remove();
  };
  const pauseLabel = () => {
    pause.textContent = paused ? (held.length ? `Resume (${held.length} new)` : "Resume") : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
  };
  const arrive = (e) => {
    if (seen.has(e.id)) return;
    seen.add(e.id);
    if (seen.size > 5 * LIVE_MAX) seen = new Set([...seen].slice(-LIVE_MAX));
    if (!lastId || e.id > lastId) lastId = e.id;
    if (paused) {
      held.push(e);
      pauseLabel();
    } else show(e);
  };

  /** After a reconnection: the events logged while the feed was down (up to the new feed's start). */
  async function backfill(after, upTo, params) {
    try {
      const page = await api(`/v1/events${query({ ...params, cursor: after, limit: 1000 })}`);
      page.events.filter((e) => !upTo || e.id <= upTo).forEach(arrive);
    } catch {
      /* the feed goes on; History has them */
    }
  }

  function connect(resume) {
    clearTimeout(timer);
    const gen = ++generation;
    if (socket) socket.close();
    const params = filters.values();
    const ws = new WebSocket(socketUrl("/v1/events/ws", params), streamProtocols());
    socket = ws;
    setState("connecting", retries ? "Reconnecting…" : "Connecting…");
    ws.addEventListener("message", (message) => {
      if (gen !== generation) return;
      let msg;
      try {
        msg = JSON.parse(message.data);
      } catch {
        return;
      }
      if (msg.type === "ready") {
        retries = 0;
        setState("open", "Connected: new events appear at the top");
        if (resume && lastId) backfill(lastId, msg.cursor, params);
      } else if (msg.type === "event") {
        arrive(msg);
      } else if (msg.type === "error") {
        setState("refused", `The server refused the feed: ${msg.detail || msg.code}`);
      }
    });
    ws.addEventListener("close", (event) => {
      if (gen !== generation || stopped) return;
      if (event.code === 4401 || event.code === 4403) {
        if (state.dataset.state !== "refused") setState("refused", `The server refused the feed (${event.reason || event.code})`);
        if (event.code === 4401) notifyUnauthorized();
        return;
      }
      retries += 1;
      const wait = Math.min(10_000, 1000 * 2 ** (retries - 1));
      setState("reconnecting", `Disconnected; trying again in ${Math.round(wait / 1000)} s…`);
      timer = setTimeout(() => connect(true), wait);
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    list.replaceChildren();
    held = [];
    seen = new Set();
    lastId = null;
    empty.hidden = false;
    pauseLabel();
    retries = 0;
    connect(false);
    say("Live feed filters applied");
  });
  form.addEventListener("change", (event) => event.target.tagName === "SELECT" && form.requestSubmit());
  pause.addEventListener("click", () => {
    paused = !paused;
    if (!paused) {
      held.forEach(show);
      held = [];
    }
    pauseLabel();
  });

  connect(false);
  return () => {
    stopped = true;
    clearTimeout(timer);
    generation += 1;
    if (socket) socket.close();
  };
}

// ---- History ---------------------------------------------------------------------------------

function historyTab(panel, ctx) {
  const filters = filterFields("history", ctx);
  const from = h("input", { id: "history-from", type: "datetime-local", value: `${today()}T00:00` });
  const to = h("input", { id: "history-to", type: "datetime-local" });
  const field = (id, text, input) => h("div", { class: "field" }, h("label", { for: id }, text), input);
  const form = h(
    "form",
    { class: "filters", id: "history-filters" },
    field("history-from", "From", from),
    field("history-to", "Until", to),
    ...filters.fields,
    h("button", { type: "submit" }, "Show events"),
  );
  const exportButton = h("button", { type: "button", class: "quiet", id: "history-export" }, "Export CSV");
  const summary = h("p", { class: "muted", id: "history-summary", "aria-live": "polite" });
  const message = h("p", { class: "message", role: "alert" });
  const rows = h("tbody", { id: "history-rows" });
  const more = h("button", { type: "button", class: "quiet", id: "history-more", hidden: true }, "Load more");
  panel.append(
    h("h2", {}, "History"),
    form,
    message,
    h("div", { class: "row" }, summary, exportButton),
    table("Logged events, oldest first", ["Face", "Time", "Kind", "Person", "Confidence", "Source", "Details"], rows, "history-table"),
    more,
  );

  let cursor = null;
  let shown = 0;
  let params = null;
  let busy = false;

  const current = () => {
    const since = unix(from.value);
    const until = unix(to.value);
    if (since !== undefined && until !== undefined && until <= since) throw new Error("“Until” must come after “From”");
    return { since, until, ...filters.values() };
  };

  async function load(reset) {
    if (busy) return;
    busy = true;
    message.textContent = "";
    try {
      if (reset) {
        params = current();
        cursor = null;
        shown = 0;
        rows.replaceChildren();
        summary.textContent = "Loading…";
      }
      const page = await api(`/v1/events${query({ ...params, cursor, limit: PAGE })}`);
      rows.append(...page.events.map((e) => eventRow(e, ctx)));
      shown += page.events.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      summary.textContent = shown
        ? `${shown} ${shown === 1 ? "event" : "events"}${cursor ? " so far: more to load" : ""}`
        : "No events in this range.";
    } catch (err) {
      message.textContent = `Cannot list events: ${err.message}`;
      if (reset) summary.textContent = "";
    } finally {
      busy = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  more.addEventListener("click", async () => {
    await load(false);
    if (more.hidden) panel.querySelector(".table-wrap").focus(); // the button is gone: keep focus near the rows
  });
  exportButton.addEventListener("click", () => {
    let chosen;
    try {
      chosen = current();
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    const q = { ...chosen };
    download(`/v1/events/export.csv${query(q)}`, `events-${today()}.csv`, "events CSV");
  });
  return { show: () => params === null && load(true) };
}

// ---- Attendance ------------------------------------------------------------------------------

function attendanceTab(panel, ctx) {
  const from = h("input", { id: "attendance-from", type: "date", value: today(), required: true });
  const to = h("input", { id: "attendance-to", type: "date", value: today(), required: true });
  const field = (id, text, input) => h("div", { class: "field" }, h("label", { for: id }, text), input);
  const form = h(
    "form",
    { class: "filters", id: "attendance-filters" },
    field("attendance-from", "From", from),
    field("attendance-to", "To", to),
    h("button", { type: "submit" }, "Show attendance"),
  );
  const csv = h("button", { type: "button", class: "quiet", id: "attendance-csv" }, "Download CSV");
  const hr = h("button", { type: "button", class: "quiet", id: "attendance-hr" }, "HR check-ins");
  const summary = h("p", { class: "muted", id: "attendance-summary", "aria-live": "polite" });
  const message = h("p", { class: "message", role: "alert" });
  const days = h("div", { id: "attendance-days" });
  panel.append(
    h("h2", {}, "Attendance"),
    h("p", { class: "muted hint" }, "Who was seen each day: first and last seen, time present and where. Days are the server's calendar days; times are shown in this browser's time zone."),
    form,
    message,
    h("div", { class: "row downloads" }, csv, hr),
    summary,
    days,
  );
  let loaded = false;

  const range = () => {
    if (from.value && to.value && to.value < from.value) throw new Error("“To” must not come before “From”");
    return { from: from.value || today(), to: to.value || from.value || today() };
  };
  const sources = (list) =>
    (list || []).map((s, i) => [i ? ", " : "", s.startsWith("camera:") ? sourceOf(s, ctx) : s]).flat();

  function dayTable(day) {
    const rows = h(
      "tbody",
      {},
      ...day.people.map((p) =>
        h(
          "tr",
          { "data-testid": "attendance-person", "data-name": p.name || "", "data-person": p.person_id || "" },
          h("td", {}, p.name || p.person_id || "Unknown person"),
          h("td", {}, timeOf(p.first_seen)),
          h("td", {}, timeOf(p.last_seen)),
          h("td", { "data-testid": "present" }, hoursMinutes(p.present_s)),
          h("td", {}, ...sources(p.sources)),
        ),
      ),
    );
    return h(
      "section",
      { class: "day", "data-testid": "attendance-day", "data-date": day.date },
      h("h3", {}, longDate(day.date)),
      day.people.length
        ? table(`Attendance on ${day.date}`, ["Name", "First seen", "Last seen", "Time present (h:mm)", "Sources"], rows)
        : h("p", { class: "muted" }, "Nobody seen."),
    );
  }

  async function load() {
    loaded = true;
    message.textContent = "";
    let chosen;
    try {
      chosen = range();
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    summary.textContent = "Loading…";
    try {
      const result = await api(`/v1/attendance${query(chosen)}`);
      const list = result.days || [];
      const people = new Set(list.flatMap((d) => d.people.map((p) => p.person_id)));
      summary.textContent = list.some((d) => d.people.length)
        ? `${people.size} ${people.size === 1 ? "person" : "people"} seen`
        : "Nobody seen in this range.";
      days.replaceChildren(...list.map(dayTable));
    } catch (err) {
      summary.textContent = "";
      days.replaceChildren();
      message.textContent = `Cannot show attendance: ${err.message}`;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  const fetchFile = (format, name, what) => {
    let chosen;
    try {
      chosen = range();
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    download(`/v1/attendance${query({ ...chosen, format })}`, `${name}-${chosen.from}_${chosen.to}.csv`, what);
  };
  csv.addEventListener("click", () => fetchFile("csv", "attendance", "attendance CSV"));
  hr.addEventListener("click", () => fetchFile("hr", "checkins", "HR check-ins CSV"));
  return { show: () => loaded || load() };
}

// ---- Webhooks --------------------------------------------------------------------------------

function webhooksTab(panel, alive) {
  const url = h("input", { id: "webhook-url", type: "url", required: true, maxlength: 2000, autocomplete: "off", placeholder: "https://example.org/hook" });
  const kinds = Object.entries(KINDS).map(([value, text]) => {
    const box = h("input", { type: "checkbox", id: `webhook-kind-${value}`, value });
    return { box, el: h("label", { class: "check", for: `webhook-kind-${value}` }, box, text) };
  });
  const addError = h("p", { class: "message", id: "webhook-error", role: "alert" });
  const form = h(
    "form",
    { class: "card", id: "add-webhook" },
    h("label", { for: "webhook-url" }, "Webhook URL"),
    url,
    h(
      "fieldset",
      { class: "kinds" },
      h("legend", {}, "Event kinds"),
      h("div", { class: "row" }, ...kinds.map((k) => k.el)),
      h("p", { class: "muted hint" }, "None checked: every kind."),
    ),
    h("button", { type: "submit" }, "Add webhook"),
    addError,
  );
  const secretInput = h("input", { id: "webhook-secret-value", readonly: true, autocomplete: "off", spellcheck: "false" });
  const secretFor = h("strong", {});
  const copy = h("button", { type: "button", class: "quiet" }, "Copy");
  const secretDone = h("button", { type: "button", class: "quiet" }, "Done");
  const secretBox = h(
    "div",
    { class: "card secret", id: "webhook-secret", hidden: true, role: "region", "aria-label": "New webhook secret" },
    h("p", {}, "Webhook added: ", secretFor),
    h("label", { for: "webhook-secret-value" }, "Signing secret"),
    h("div", { class: "row" }, secretInput, copy),
    h(
      "p",
      { class: "hint" },
      "Copy it now: it is shown only this once. The receiver checks each request's X-Facegate-Signature header with it (HMAC-SHA256).",
    ),
    secretDone,
  );
  const summary = h("p", { class: "muted", id: "webhook-summary", "aria-live": "polite" }, "Loading…");
  const list = h("ul", { class: "webhooks", id: "webhook-list" });
  panel.append(h("h2", {}, "Webhooks"), h("p", { class: "muted hint" }, "Each event is sent (signed, retried, in order) to every webhook that wants its kind."), form, secretBox, summary, list);

  const rows = new Map(); // id -> {el, update}
  let timer = null;
  let visible = false;
  let busy = false;

  function row(w) {
    const urlText = h("span", { class: "url" });
    const stateBadge = h("span", { class: "state", "data-testid": "webhook-state" });
    const kindsText = h("p", { class: "muted kinds-text" });
    const count = (name) => h("span", { "data-testid": `webhook-${name}` }, "0");
    const pending = count("pending");
    const delivered = count("delivered");
    const dead = count("dead");
    const lastError = h("p", { class: "webhook-problem", "data-testid": "webhook-last-error" });
    const test = h("button", { type: "button" }, "Send test event");
    const toggle = h("button", { type: "button", class: "quiet" });
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    const message = h("p", { class: "message", role: "alert" });
    const deadList = h("ul", { class: "dead-list" });
    const deadBox = h("details", { class: "dead", hidden: true }, h("summary", {}, "Dead deliveries"), deadList);
    const el = h(
      "li",
      { "data-testid": "webhook", "data-id": w.id },
      h("div", { class: "title" }, urlText, stateBadge),
      kindsText,
      h("p", { class: "counts" }, pending, " pending · ", delivered, " delivered · ", dead, " dead"),
      lastError,
      h("div", { class: "row actions" }, test, toggle, remove),
      message,
      deadBox,
    );
    let hook = w;
    let deadShown = -1;

    async function showDead() {
      try {
        const items = await api(`/v1/webhooks/${encodeURIComponent(hook.id)}/deliveries?state=dead`);
        deadList.replaceChildren(
          ...items.map((d) =>
            h(
              "li",
              { "data-testid": "dead-delivery" },
              h("code", {}, d.event_id),
              ` after ${d.attempts} ${d.attempts === 1 ? "attempt" : "attempts"}: `,
              d.last_error || "no error recorded",
            ),
          ),
        );
      } catch (err) {
        deadList.replaceChildren(h("li", {}, `Cannot list them: ${err.message}`));
      }
    }

    function update(next) {
      hook = next;
      el.dataset.url = next.url;
      el.dataset.enabled = String(next.enabled);
      urlText.textContent = next.url;
      stateBadge.textContent = next.enabled ? "enabled" : "disabled";
      stateBadge.className = `state ${next.enabled ? "on" : "off"}`;
      kindsText.textContent = `Kinds: ${next.kinds.length ? next.kinds.map((k) => KINDS[k] || k).join(", ") : "every kind"}`;
      pending.textContent = String(next.pending);
      delivered.textContent = String(next.delivered);
      dead.textContent = String(next.dead);
      lastError.textContent = next.last_error ? `Last error: ${next.last_error}` : "";
      toggle.textContent = next.enabled ? "Disable" : "Enable";
      toggle.setAttribute("aria-label", `${next.enabled ? "Disable" : "Enable"} the webhook to ${next.url}`);
      test.setAttribute("aria-label", `Send test event to ${next.url}`);
      remove.setAttribute("aria-label", `Delete the webhook to ${next.url}`);
      deadBox.hidden = !next.dead;
      deadBox.querySelector("summary").textContent = `Dead deliveries (${next.dead})`;
      if (next.dead && next.dead !== deadShown) showDead();
      deadShown = next.dead;
    }

    const path = (rest = "") => `/v1/webhooks/${encodeURIComponent(hook.id)}${rest}`;
    test.addEventListener("click", async () => {
      message.textContent = "";
      try {
        const sent = await api(path("/test"), { method: "POST" });
        say(`Test event ${sent.event_id} queued for ${hook.url}`);
        refresh();
      } catch (err) {
        message.textContent = `Cannot send a test event: ${err.message}`;
      }
    });
    toggle.addEventListener("click", async () => {
      message.textContent = "";
      try {
        update(await api(path(), { method: "PATCH", json: { enabled: !hook.enabled } }));
        say(`Webhook to ${hook.url} ${hook.enabled ? "enabled" : "disabled"}`);
      } catch (err) {
        message.textContent = `Cannot change the webhook: ${err.message}`;
      }
    });
    let deleting = false;
    remove.addEventListener("click", async () => {
      if (deleting) return;
      deleting = true;
      message.textContent = "";
      try {
        const question = `Delete the webhook to ${hook.url}? Events not delivered yet are dropped. This cannot be undone.`;
        if (!(await confirmAction(question, "Delete webhook"))) return;
        await api(path(), { method: "DELETE" });
        say(`Webhook to ${hook.url} deleted`);
        el.remove();
        rows.delete(hook.id);
        summarize();
        url.focus();
      } catch (err) {
        message.textContent = `Cannot delete the webhook: ${err.message}`;
      } finally {
        deleting = false;
      }
    });
    update(w);
    return { el, update };
  }

  const summarize = () => {
    const n = rows.size;
    summary.textContent = n ? `${n} ${n === 1 ? "webhook" : "webhooks"}` : "No webhooks yet.";
  };

  async function refresh() {
    if (busy || !alive()) return;
    busy = true;
    try {
      const hooks = await api("/v1/webhooks");
      if (!alive()) return;
      const ids = new Set(hooks.map((w) => w.id));
      for (const [id, r] of rows) if (!ids.has(id)) (r.el.remove(), rows.delete(id));
      for (const w of hooks) {
        const known = rows.get(w.id);
        if (known) known.update(w);
        else {
          const made = row(w);
          rows.set(w.id, made);
          list.append(made.el);
        }
      }
      summarize();
    } catch (err) {
      summary.textContent =
        err.status === 403 ? "Webhooks need an API key with the admin scope." : `Cannot list webhooks: ${err.message}`;
    } finally {
      busy = false;
    }
  }

  function poll() {
    clearTimeout(timer);
    if (!visible || !alive()) return;
    refresh().finally(() => {
      if (visible && alive()) timer = setTimeout(poll, WEBHOOK_POLL_MS);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    addError.textContent = "";
    const chosen = kinds.filter((k) => k.box.checked).map((k) => k.box.value);
    try {
      const made = await api("/v1/webhooks", { method: "POST", json: { url: url.value.trim(), kinds: chosen } });
      url.value = "";
      kinds.forEach((k) => (k.box.checked = false));
      secretFor.textContent = made.url;
      secretInput.value = made.secret;
      secretBox.hidden = false;
      secretInput.focus();
      secretInput.select();
      say(`Webhook to ${made.url} added`);
      await refresh();
    } catch (err) {
      addError.textContent = `Cannot add the webhook: ${err.message}`;
      url.focus();
    }
  });
  copy.addEventListener("click", async () => {
    secretInput.select();
    try {
      await navigator.clipboard.writeText(secretInput.value);
      say("Secret copied");
    } catch {
      say("Press Ctrl+C (⌘C) to copy the selected secret");
    }
  });
  secretDone.addEventListener("click", () => {
    secretInput.value = "";
    secretBox.hidden = true;
    url.focus();
  });

  return {
    show: () => {
      visible = true;
      poll();
    },
    hide: () => {
      visible = false;
      clearTimeout(timer);
    },
    stop: () => clearTimeout(timer),
  };
}

// ---- The page --------------------------------------------------------------------------------

export function render(root, tab) {
  let alive = true;
  const bag = new UrlBag(); // the face snapshots shown
  const faces = new IntersectionObserver(
    (entries) =>
      entries
        .filter((entry) => entry.isIntersecting)
        .forEach(({ target }) => {
          faces.unobserve(target);
          showProtectedImage(target, target.dataset.src, bag).catch(() => target.remove()); // expired: no picture
        }),
    { rootMargin: "200px" },
  );
  const ctx = { cameras: new Map(), people: [], faces };
  ctx.ready = Promise.all([
    api("/v1/cameras")
      .then((list) => list.forEach((c) => ctx.cameras.set(c.id, c.name)))
      .catch(() => {}),
    api("/v1/people?limit=500")
      .then((page) => (ctx.people = page.items))
      .catch(() => {}),
  ]);
  const sources = h("datalist", { id: "event-sources" });
  ctx.ready.then(() => sources.replaceChildren(...[...ctx.cameras].map(([id, name]) => h("option", { value: `camera:${id}` }, name))));

  const name = collection.get();
  const tablist = h("div", { role: "tablist", "aria-label": "Events views", class: "tabs" });
  const panels = {};
  const buttons = {};
  for (const [key, title] of Object.entries(TABS)) {
    buttons[key] = h(
      "button",
      { type: "button", role: "tab", id: `tab-${key}`, "aria-controls": `panel-${key}`, "aria-selected": "false", tabindex: -1 },
      title,
    );
    panels[key] = h("section", { role: "tabpanel", id: `panel-${key}`, "aria-labelledby": `tab-${key}`, tabindex: 0, hidden: true });
    tablist.append(buttons[key]);
  }
  root.append(
    h("h1", { tabindex: -1 }, "Events"),
    h(
      "p",
      { class: "muted hint", id: "events-hint" },
      "What the cameras saw: people recognised, unknown faces, people leaving, cameras going down and up.",
      name === "default" ? "" : ` Only events of the collection “${name}”.`,
    ),
    tablist,
    ...Object.values(panels),
    sources,
  );

  const stopLive = liveTab(panels.live, ctx);
  const views = {
    history: historyTab(panels.history, ctx),
    attendance: attendanceTab(panels.attendance, ctx),
    webhooks: webhooksTab(panels.webhooks, () => alive),
  };
  let current = null;

  function select(key, focus = false) {
    if (!TABS[key]) key = "live";
    if (current === key) return;
    if (current && views[current]?.hide) views[current].hide();
    current = key;
    for (const k of Object.keys(TABS)) {
      const on = k === key;
      buttons[k].setAttribute("aria-selected", String(on));
      buttons[k].tabIndex = on ? 0 : -1;
      panels[k].hidden = !on;
    }
    if (focus) buttons[key].focus();
    const hash = key === "live" ? "#/events" : `#/events/${key}`;
    if (location.hash !== hash && !(key === "live" && location.hash === "#/events/live")) history.replaceState(null, "", hash);
    views[key]?.show();
  }

  const order = Object.keys(TABS);
  tablist.addEventListener("click", (event) => {
    const button = event.target.closest("[role=tab]");
    if (button) select(button.id.slice(4), true);
  });
  tablist.addEventListener("keydown", (event) => {
    const at = order.indexOf(current);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: order.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    select(order[(to + order.length) % order.length], true);
  });
  select(tab && TABS[tab] ? tab : "live");

  return () => {
    alive = false;
    faces.disconnect();
    bag.release();
    stopLive();
    views.webhooks.stop();
  };
}
