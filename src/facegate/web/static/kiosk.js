// Demo / kiosk mode (#/kiosk): each visitor (browser tab) gets a session of their own over the chosen
// collection. Who they enrol is searched with that collection's people, seen by this visitor only, and
// erased when the session ends or expires (see the server's session_ttl_s).

import { ApiProblem, apiKey, collection, filesForm } from "./api.js";
import { h, say } from "./dom.js";

const SESSION = "facegate.kioskSession"; // this tab's {id, token}: sessionStorage, gone with the tab

function stored() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) || "null");
  } catch {
    return null;
  }
}

/** A call in the visitor's session: the API key (if any) and the session token in headers. */
async function call(session, path, { method = "GET", form } = {}) {
  const headers = { "X-Session-Token": session.token };
  if (apiKey.get()) headers["X-API-Key"] = apiKey.get();
  const response = await fetch(`/v1/sessions/${encodeURIComponent(session.id)}${path}`, { method, headers, body: form });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new ApiProblem(response.status, problem.code, problem.detail || response.statusText);
  }
  return response.status === 204 ? null : response.json();
}

/** This tab's live session, or a new one (the stored one expired or was ended). */
async function visitorSession() {
  const known = stored();
  if (known) {
    try {
      await call(known, "");
      return known;
    } catch (err) {
      if (err.status !== 404) throw err;
    }
  }
  const headers = apiKey.get() ? { "X-API-Key": apiKey.get() } : {};
  const response = await fetch(`/v1/sessions?collection=${encodeURIComponent(collection.get())}`, { method: "POST", headers });
  const body = await response.json();
  if (!response.ok) throw new ApiProblem(response.status, body.code, body.detail);
  const session = { id: body.id, token: body.token };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  return session;
}

export function render(root) {
  const name = h("input", { id: "kiosk-name", name: "name", required: true, maxlength: 200, autocomplete: "off" });
  const photos = h("input", { id: "kiosk-photos", type: "file", accept: "image/*", multiple: true, required: true });
  const probe = h("input", { id: "kiosk-probe", type: "file", accept: "image/*" });
  const people = h("ul", { id: "kiosk-people", "aria-live": "polite" });
  const result = h("p", { id: "kiosk-result", "aria-live": "polite" });
  const end = h("button", { type: "button", class: "danger", id: "kiosk-end" }, "End my session");
  const enrolForm = h(
    "form",
    { id: "kiosk-enrol" },
    h("label", { for: "kiosk-name" }, "Your name"),
    name,
    h("label", { for: "kiosk-photos" }, "Photos of your face"),
    photos,
    h("button", { type: "submit" }, "Enrol me"),
  );
  root.append(
    h("h1", {}, "Try facegate"),
    h("p", {}, "Enrol yourself from a photo or two, then try a photo. What you enrol is seen by this browser tab only and erased when you end the session, or after a while."),
    enrolForm,
    h("h2", {}, "Recognise a photo"),
    h("label", { for: "kiosk-probe" }, "Photo"),
    probe,
    result,
    h("h2", {}, "Enrolled in this session"),
    people,
    end,
  );
  let session = null;
  const failed = (err) => say(err.message || String(err), "error");

  async function refresh() {
    const page = await call(session, "/people");
    people.replaceChildren(...page.items.map((p) => h("li", {}, p.name)));
    root.dataset.session = "ready";
  }

  enrolForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const query = `/people?name=${encodeURIComponent(name.value.trim())}`;
      await call(session, query, { method: "POST", form: filesForm("images", photos.files) });
      enrolForm.reset();
      await refresh();
      say("Enrolled in your session");
    } catch (err) {
      failed(err);
    }
  });
  probe.addEventListener("change", async () => {
    if (!probe.files.length) return;
    try {
      const answer = await call(session, "/recognize", { method: "POST", form: filesForm("image", probe.files) });
      const names = answer.faces.map((f) => f.decision.name || "Unknown");
      result.textContent = names.length ? names.join(", ") : "No face found";
    } catch (err) {
      failed(err);
    }
  });
  end.addEventListener("click", async () => {
    try {
      await call(session, "", { method: "DELETE" });
      sessionStorage.removeItem(SESSION);
      session = await visitorSession();
      await refresh();
      say("Your session ended: everything you enrolled is erased");
    } catch (err) {
      failed(err);
    }
  });
  visitorSession()
    .then((s) => {
      session = s;
      return refresh();
    })
    .catch(failed);
}
