// The single page: hash routes, navigation state, the API key dialog and the first-run guide.

import { api, apiKey, collection, onUnauthorized } from "./api.js";
import { h } from "./dom.js";
import * as cameras from "./cameras.js";
import * as collections from "./collections.js";
import * as enrol from "./enrol.js";
import * as events from "./events.js";
import * as help from "./help.js";
import * as kiosk from "./kiosk.js";
import * as live from "./live.js";
import * as people from "./people.js";
import * as upload from "./upload.js";
import * as video from "./video.js";

const ROUTES = {
  live: { title: "Live", render: live.render },
  enrol: { title: "Enrol", render: enrol.render },
  upload: { title: "Upload", render: upload.render },
  video: { title: "Video", render: video.render },
  people: { title: "People", render: (root, id) => (id ? people.renderPerson(root, id) : people.renderList(root)) },
  collections: { title: "Collections", render: collections.render },
  cameras: { title: "Cameras", render: cameras.render },
  events: { title: "Events", render: events.render },
  help: { title: "Help", render: help.render },
  kiosk: { title: "Try it", render: kiosk.render },
};
const SEEN_GUIDE = "facegate.seenGuide";

let cleanup = null;

function route() {
  const [name, id] = location.hash.replace(/^#\/?/, "").split("/");
  const target = ROUTES[name] ? name : "live";
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  const view = document.getElementById("view");
  view.replaceChildren();
  document.title = `${ROUTES[target].title} · facegate`;
  document.body.classList.toggle("kiosk", target === "kiosk"); // a visitor's page: no navigation
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.dataset.route === target) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  cleanup = ROUTES[target].render(view, id ? decodeURIComponent(id) : undefined);
  const heading = view.querySelector("h1");
  if (heading && route.moved) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
  route.moved = true;
}

function askForKey() {
  const dialog = document.getElementById("key-dialog");
  if (dialog.open) return;
  const input = document.getElementById("key-input");
  input.value = apiKey.get();
  dialog.returnValue = "";
  dialog.showModal();
  dialog.addEventListener(
    "close",
    () => {
      if (dialog.returnValue === "save" && input.value.trim()) {
        apiKey.set(input.value);
        route();
        collectionPicker();
      }
    },
    { once: true },
  );
}

function firstRunBanner() {
  if (localStorage.getItem(SEEN_GUIDE)) return;
  const close = h("button", { type: "button", class: "quiet", "aria-label": "Dismiss the welcome note" }, "Got it");
  const note = h(
    "div",
    { class: "welcome" },
    h("p", {}, h("strong", {}, "Welcome to facegate. "), "Enrol yourself in a few seconds on ", h("a", { href: "#/enrol" }, "Enrol"), ", then see yourself recognised on ", h("a", { href: "#/live" }, "Live"), ". ", h("a", { href: "#/help" }, "How it works"), "."),
    close,
  );
  close.addEventListener("click", () => {
    localStorage.setItem(SEEN_GUIDE, "1");
    note.remove();
  });
  document.getElementById("banner").append(note);
}

/** The collection picker in the header: every page works in the chosen collection. */
async function collectionPicker() {
  const select = document.getElementById("collection-select");
  let names;
  try {
    names = (await api("/v1/collections")).map((c) => c.name);
  } catch {
    return; // e.g. a key without the admin scope: stay in the current collection
  }
  if (!names.includes(collection.get())) collection.set("default");
  select.replaceChildren(...names.map((n) => h("option", { value: n, selected: n === collection.get() }, n)));
  select.closest(".collection").hidden = names.length < 2;
  select.onchange = () => {
    collection.set(select.value);
    route();
  };
}

/** A demo server (``FACEGATE_EPHEMERAL=1``) says, on every page, that nothing is kept. */
function ephemeralNote() {
  const note = h(
    "div",
    { class: "welcome", role: "note", "data-testid": "ephemeral" },
    h("p", {}, h("strong", {}, "Demo mode. "), "Everything enrolled here is kept in a temporary store and erased when the server stops."),
  );
  document.getElementById("banner").prepend(note);
}

async function checkAuth() {
  const button = document.getElementById("key-button");
  button.addEventListener("click", askForKey);
  try {
    const info = await api("/v1/info");
    if (info.ephemeral) ephemeralNote();
    button.hidden = !info.auth_required;
    if (info.auth_required && !apiKey.get()) askForKey();
  } catch {
    /* the views report connection problems themselves */
  }
}

onUnauthorized(() => {
  document.getElementById("key-button").hidden = false;
  askForKey();
});
window.addEventListener("hashchange", route);
// the Collections page created, renamed or deleted one: offer the new list (and leave a deleted one)
window.addEventListener("facegate:collections-changed", () => collectionPicker());
// the skip link moves focus to the page without changing the route (the hash names routes)
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("view").focus();
});
firstRunBanner();
checkAuth().then(collectionPicker);
route();
