// People: a searchable list with thumbnails, and each person's page (rename, templates,
// add photos, remove a template, delete with confirmation).

import { api, apiUpload, filesForm, showProtectedImage, UrlBag } from "./api.js";
import { confirmAction, fileCounts, h, say, uploadProgress } from "./dom.js";
import { fileReport } from "./enrol.js";

const PAGE = 24;

export function renderList(root) {
  const search = h("input", { id: "people-search", type: "search", placeholder: "Search by name", autocomplete: "off" });
  const grid = h("ul", { class: "people", id: "people-list" });
  const pager = h("div", { class: "row pager" });
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  root.append(
    h("h1", {}, "People"),
    h("div", { class: "controls" }, h("label", { for: "people-search" }, "Search"), search, h("a", { href: "#/enrol", class: "button" }, "Enrol someone")),
    summary,
    grid,
    pager,
  );
  let offset = 0;
  let timer = null;
  const bag = new UrlBag();

  async function load() {
    const q = encodeURIComponent(search.value.trim());
    let page;
    try {
      page = await api(`/v1/people?limit=${PAGE}&offset=${offset}&q=${q}`);
    } catch (err) {
      summary.textContent = `Cannot list people: ${err.message}`;
      return;
    }
    summary.textContent = page.total === 0 ? "Nobody yet. Enrol someone to start." : `${page.total} people`;
    bag.release();
    grid.replaceChildren(...page.items.map((person) => personCard(person, bag)));
    const prev = h("button", { type: "button", class: "quiet", disabled: offset === 0 }, "Previous");
    const next = h("button", { type: "button", class: "quiet", disabled: offset + PAGE >= page.total }, "Next");
    prev.addEventListener("click", () => ((offset = Math.max(0, offset - PAGE)), load()));
    next.addEventListener("click", () => ((offset += PAGE), load()));
    pager.replaceChildren(...(page.total > PAGE ? [prev, next] : []));
  }
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => ((offset = 0), load()), 250);
  });
  load();
  return () => bag.release();
}

function personCard(person, bag) {
  const thumb = h("img", { alt: "", class: "thumb", width: 64, height: 64 });
  if (person.thumbnail_url) showProtectedImage(thumb, person.thumbnail_url, bag).catch(() => {});
  return h(
    "li",
    { "data-testid": "person", "data-name": person.name },
    h(
      "a",
      { href: `#/people/${person.id}` },
      thumb,
      h("span", { class: "name" }, person.name),
      h("span", { class: "muted" }, `${person.template_count} face${person.template_count === 1 ? "" : "s"}`),
    ),
  );
}

export function renderPerson(root, personId) {
  const heading = h("h1", { id: "person-name" }, "…");
  const nameInput = h("input", { id: "rename-input", required: true, maxlength: 200 });
  const renameForm = h(
    "form",
    { class: "row", id: "rename-form" },
    h("label", { for: "rename-input" }, "Name"),
    nameInput,
    h("button", { type: "submit" }, "Rename"),
  );
  const faces = h("ul", { class: "templates", id: "templates" });
  const photos = h("input", { id: "add-photos", type: "file", accept: "image/*", multiple: true });
  const report = h("div", { "aria-live": "polite" });
  const remove = h("button", { type: "button", class: "danger", id: "delete-person" }, "Delete person");
  root.append(
    h("p", {}, h("a", { href: "#/people" }, "← People")),
    heading,
    renameForm,
    h("h2", {}, "Face templates"),
    faces,
    h("div", { class: "row" }, h("label", { for: "add-photos" }, "Add photos"), photos),
    report,
    h("h2", {}, "Erase"),
    h("p", {}, "Deleting removes this person with every template and face image."),
    remove,
  );
  let person = null;
  const bag = new UrlBag();

  async function load() {
    try {
      person = await api(`/v1/people/${personId}`);
    } catch (err) {
      heading.textContent = err.status === 404 ? "No such person" : `Cannot load: ${err.message}`;
      renameForm.hidden = remove.hidden = true;
      return;
    }
    heading.textContent = person.name;
    nameInput.value = person.name;
    const templates = await api(`/v1/people/${personId}/faces`);
    bag.release();
    faces.replaceChildren(...templates.map(templateCard));
    if (!templates.length) faces.append(h("li", { class: "muted" }, "No face templates yet: add photos."));
  }

  function templateCard(t) {
    const img = h("img", { alt: `Face from ${t.source || "an upload"}`, width: 96, height: 96 });
    if (t.chip_url) showProtectedImage(img, t.chip_url, bag).catch(() => {});
    const drop = h("button", { type: "button", class: "quiet", "aria-label": `Remove the face from ${t.source || "an upload"}` }, "Remove");
    drop.addEventListener("click", async () => {
      if (!(await confirmAction("Remove this face template?", "Remove"))) return;
      try {
        await api(`/v1/faces/${t.id}`, { method: "DELETE" });
        say("Template removed");
        load();
      } catch (err) {
        say(err.message, "error");
      }
    });
    return h("li", { "data-testid": "template" }, img, h("span", { class: "muted" }, `quality ${Math.round(t.quality * 100)}%`), drop);
  }

  renameForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      person = await api(`/v1/people/${personId}`, { method: "PATCH", json: { name: nameInput.value.trim() } });
      heading.textContent = person.name;
      say(`Renamed to ${person.name}`);
    } catch (err) {
      say(err.message, "error");
    }
  });
  photos.addEventListener("change", async () => {
    if (!photos.files.length) return;
    const chosen = [...photos.files];
    const progress = uploadProgress(chosen, ["photo", "photos"]);
    report.replaceChildren(progress.el);
    try {
      const added = await apiUpload(`/v1/people/${personId}/faces`, filesForm("images", chosen), progress.update);
      progress.done(fileCounts(added.files));
      report.replaceChildren(progress.el, h("p", {}, `${added.added} added.`), fileReport(added.files));
      load();
    } catch (err) {
      progress.failed();
      report.replaceChildren(progress.el, h("p", { class: "message", role: "alert" }, err.message));
    }
    photos.value = "";
  });
  remove.addEventListener("click", async () => {
    if (!person || !(await confirmAction(`Delete ${person.name} and all their face data? This cannot be undone.`))) return;
    try {
      await api(`/v1/people/${personId}`, { method: "DELETE" });
      say(`${person.name} deleted`);
      location.hash = "#/people";
    } catch (err) {
      say(err.message, "error");
    }
  });
  load();
  return () => bag.release();
}
