// Collections: list them with how many people each holds; create, rename and delete one
// (deleting asks first, naming what will be erased). The header's picker is told to refresh.

import { api, collection } from "./api.js";
import { confirmAction, h, say } from "./dom.js";

const DEFAULT = "default";
const PAGE = 500; // the API's largest page of people

/** Tell the header's collection picker that the list of collections changed. */
function changed() {
  window.dispatchEvent(new CustomEvent("facegate:collections-changed"));
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** The server's problem detail, without the request-field prefix of validation errors. */
const detailOf = (err) => (err.code === "invalid_request" ? err.message.replace(/^body\.name: /, "") : err.message);

/** How many people a collection holds, and how many face templates they have between them. */
async function contents(name) {
  const q = encodeURIComponent(name);
  let people = 0;
  let templates = 0;
  for (let offset = 0; ; offset += PAGE) {
    const page = await api(`/v1/people?collection=${q}&limit=${PAGE}&offset=${offset}`);
    people = page.total;
    templates += page.items.reduce((sum, p) => sum + p.template_count, 0);
    if (!page.items.length || offset + PAGE >= page.total) return { people, templates };
  }
}

export function render(root) {
  const nameInput = h("input", {
    id: "new-collection-name",
    name: "name",
    required: true,
    maxlength: 200,
    autocomplete: "off",
    "aria-describedby": "new-collection-hint",
  });
  const createError = h("p", { class: "message", id: "create-collection-error", role: "alert" });
  const createForm = h(
    "form",
    { class: "card", id: "create-collection" },
    h("label", { for: "new-collection-name" }, "New collection name"),
    nameInput,
    h("p", { class: "muted hint", id: "new-collection-hint" }, "Letters, digits, dots, dashes and underscores; it starts with a letter or a digit."),
    h("button", { type: "submit" }, "Create collection"),
    createError,
  );
  const summary = h("p", { class: "muted", "aria-live": "polite" }, "Loading…");
  const list = h("ul", { class: "collections", id: "collection-list" });
  const heading = h("h1", { tabindex: -1 }, "Collections");
  root.append(
    heading,
    h(
      "p",
      {},
      "Each collection is a separate gallery of people: recognition only names people of the chosen collection. The Collection picker at the top chooses the one every page works in.",
    ),
    createForm,
    h("h2", {}, "All collections"),
    summary,
    list,
  );
  let alive = true;

  async function load() {
    let names;
    try {
      names = (await api("/v1/collections")).map((c) => c.name);
    } catch (err) {
      summary.textContent = `Cannot list collections: ${err.message}`;
      return;
    }
    if (!alive) return;
    summary.textContent = plural(names.length, "collection", "collections");
    list.replaceChildren(...names.map(row));
  }

  function row(name) {
    const current = name === collection.get();
    const count = h("span", { class: "muted", "data-testid": "collection-people" }, "…");
    const message = h("p", { class: "message", role: "alert" });
    const title = h(
      "span",
      { class: "name" },
      name,
      current ? h("span", { class: "badge" }, "in use") : null,
    );
    const item = h("li", { "data-testid": "collection", "data-name": name }, h("div", { class: "about" }, title, count));
    api(`/v1/people?collection=${encodeURIComponent(name)}&limit=1`)
      .then((page) => (count.textContent = plural(page.total, "person", "people")))
      .catch(() => (count.textContent = "people unknown"));
    if (name === DEFAULT) {
      item.append(h("span", { class: "muted" }, "built in: cannot be renamed or deleted"), message);
      return item;
    }
    const renameButton = h("button", { type: "button", class: "quiet", "aria-label": `Rename ${name}` }, "Rename");
    const deleteButton = h("button", { type: "button", class: "danger", "aria-label": `Delete ${name}` }, "Delete");
    const actions = h("div", { class: "row actions" }, renameButton, deleteButton);
    item.append(actions, message);

    renameButton.addEventListener("click", () => {
      const inputId = `rename-collection-${name}`;
      const input = h("input", { id: inputId, value: name, required: true, maxlength: 200, autocomplete: "off" });
      const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
      const form = h(
        "form",
        { class: "row rename", "data-testid": "rename-collection" },
        h("label", { for: inputId }, `New name for ${name}`),
        input,
        h("button", { type: "submit" }, "Save"),
        cancel,
      );
      const close = () => {
        form.replaceWith(actions);
        message.textContent = "";
        renameButton.focus();
      };
      cancel.addEventListener("click", close);
      form.addEventListener("keydown", (event) => event.key === "Escape" && close());
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const to = input.value.trim();
        if (to === name) return close();
        try {
          const renamed = await api(`/v1/collections/${encodeURIComponent(name)}`, { method: "PATCH", json: { name: to } });
          if (collection.get() === name) collection.set(renamed.name);
          say(`Collection ${name} renamed to ${renamed.name}`);
          changed();
          await load();
          list.querySelector(`[data-name="${CSS.escape(renamed.name)}"] button`)?.focus();
        } catch (err) {
          message.textContent = `Cannot rename ${name}: ${detailOf(err)}`;
        }
      });
      actions.replaceWith(form);
      input.focus();
      input.select();
    });

    let busy = false; // one deletion at a time (the button stays focusable for keyboard users)
    deleteButton.addEventListener("click", async () => {
      if (busy) return;
      busy = true;
      message.textContent = "";
      try {
        let what;
        try {
          const { people, templates } = await contents(name);
          what = `its ${plural(people, "person", "people")} and ${plural(templates, "face template", "face templates")}`;
        } catch {
          what = "everyone in it and their face templates";
        }
        const question = `Delete the collection “${name}” with ${what}? This cannot be undone.`;
        if (!(await confirmAction(question, "Delete collection"))) return;
        await api(`/v1/collections/${encodeURIComponent(name)}`, { method: "DELETE" });
        const wasCurrent = collection.get() === name;
        if (wasCurrent) collection.set(DEFAULT);
        say(wasCurrent ? `Collection ${name} deleted; now working in ${DEFAULT}` : `Collection ${name} deleted`);
        changed();
        await load();
        heading.focus();
      } catch (err) {
        message.textContent = `Cannot delete ${name}: ${detailOf(err)}`;
        say(`Cannot delete ${name}: ${detailOf(err)}`, "error");
      } finally {
        busy = false;
      }
    });
    return item;
  }

  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    createError.textContent = "";
    const name = nameInput.value.trim();
    try {
      const created = await api("/v1/collections", { method: "POST", json: { name } });
      nameInput.value = "";
      say(`Collection ${created.name} created`);
      changed();
      await load();
    } catch (err) {
      createError.textContent = `Cannot create ${name || "a collection"}: ${detailOf(err)}`;
      nameInput.focus();
    }
  });

  load();
  return () => {
    alive = false;
  };
}
