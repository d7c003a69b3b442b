// Upload page: drop photos (or a ZIP); every face is drawn with its name and confidence, and
// any face can be added to a person or start a new one. A ZIP enrols its folders as people.

import { api, apiUpload, filesForm, UrlBag } from "./api.js";
import { describeDecision, faceBox, fileCounts, h, percent, say, uploadProgress } from "./dom.js";
import { createWithPhotos, fileReport } from "./enrol.js";

const ZIP_TYPES = ["application/zip", "application/x-zip-compressed"];

export function render(root) {
  const input = h("input", { type: "file", id: "upload-files", multiple: true, accept: "image/*,.zip,application/zip" });
  const zone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    h("p", {}, "Drop photos or a ZIP here, or "),
    h("label", { for: "upload-files", class: "button" }, "choose files"),
    input,
  );
  const results = h("div", { id: "upload-results" });
  root.append(
    h("h1", {}, "Upload"),
    h("p", {}, "Recognise the faces in photos. A ZIP enrols people: Ada/1.jpg or Ada.jpg names the person."),
    zone,
    results,
  );

  const bag = new UrlBag();
  const handle = (files) => {
    bag.release();
    results.replaceChildren();
    const people = api("/v1/people?limit=500").then((page) => page.items, () => []); // one list for all faces
    for (const file of files) {
      if (ZIP_TYPES.includes(file.type) || file.name.toLowerCase().endsWith(".zip")) results.append(zipResult(file));
      else results.append(imageResult(file, people, bag));
    }
  };
  input.addEventListener("change", () => handle([...input.files]));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    handle([...e.dataTransfer.files]);
  });
  return () => bag.release();
}

function imageResult(file, people, bag) {
  const url = bag.add(file);
  const img = h("img", { src: url, alt: file.name });
  const overlay = h("div", { class: "overlay" });
  const list = h("ol", { class: "face-list" });
  const status = h("p", { class: "muted" }, "Recognising…");
  const card = h(
    "section",
    { class: "card result", "data-testid": "upload-result", "aria-label": file.name },
    h("h2", {}, file.name),
    h("div", { class: "stage still" }, img, overlay),
    status,
    list,
  );
  (async () => {
    try {
      const result = await api("/v1/recognize", { method: "POST", form: filesForm("image", [file]) });
      await img.decode().catch(() => {});
      status.textContent = result.faces.length
        ? `${result.faces.length} face${result.faces.length > 1 ? "s" : ""} (${result.processing_ms.toFixed(0)} ms)`
        : "No face found";
      result.faces.forEach((face, i) => {
        const d = describeDecision(face.decision);
        overlay.append(faceBox(face.box, result.width, result.height, d, { "data-index": i + 1 }, `${i + 1} · `));
        list.append(faceActions(img, face, d, i + 1, people));
      });
    } catch (err) {
      status.textContent = `Not recognised: ${err.message}`;
      status.className = "message";
      status.setAttribute("role", "alert");
    }
  })();
  return card;
}

function faceActions(img, face, d, number, people) {
  const who = d.name === "unknown" ? d.label : `${d.label} (${percent(d.confidence)})`;
  const select = h("select", { "aria-label": `Person to add face ${number} to` });
  const addButton = h("button", { type: "button", disabled: true }, "Add to person");
  const newName = h("input", {
    "aria-label": `Name of a new person for face ${number}`,
    placeholder: "New person's name",
    class: "new-name",
  });
  const newButton = h("button", { type: "button" }, "New person");
  const item = h(
    "li",
    { "data-index": number },
    h("strong", {}, `${number}. ${who}`),
    h("span", { class: "row" }, select, addButton),
    h("span", { class: "row" }, newName, newButton),
  );
  people.then((items) => {
    // only a match preselects its person; otherwise nobody is chosen until the user picks one
    const preferred = face.decision && face.decision.status === "match" ? face.decision.person_id : null;
    const matched = items.some((p) => p.id === preferred);
    select.replaceChildren(
      h("option", { value: "", selected: !matched }, "choose a person…"),
      ...items.map((p) => h("option", { value: p.id, selected: p.id === preferred }, p.name)),
    );
    select.disabled = items.length === 0;
    addButton.disabled = !select.value;
  });
  select.addEventListener("change", () => (addButton.disabled = !select.value));
  addButton.addEventListener("click", () =>
    act(item, async () => {
      if (!select.value) throw new Error("choose a person first");
      const crop = await cropFace(img, face.box);
      const added = await api(`/v1/people/${select.value}/faces`, { method: "POST", form: filesForm("images", [crop]) });
      return `Added to ${added.person.name}`;
    }),
  );
  newButton.addEventListener("click", () =>
    act(item, async () => {
      const name = newName.value.trim();
      if (!name) throw new Error("type the new person's name first");
      const person = await createWithPhotos(name, [await cropFace(img, face.box)]);
      return `${person.name} created`;
    }),
  );
  return item;
}

async function act(item, work) {
  const buttons = item.querySelectorAll("button");
  const wasDisabled = [...buttons].map((b) => b.disabled);
  buttons.forEach((b) => (b.disabled = true));
  try {
    say(await work());
  } catch (err) {
    say(err.message, "error");
  } finally {
    buttons.forEach((b, i) => (b.disabled = wasDisabled[i]));
  }
}

/** The face with a generous margin around it, cut from the shown image, as a JPEG file. */
function cropFace(img, box) {
  const w = box.x2 - box.x1;
  const hgt = box.y2 - box.y1;
  const x = Math.max(0, box.x1 - w * 0.6);
  const y = Math.max(0, box.y1 - hgt * 0.6);
  const cw = Math.min(img.naturalWidth - x, w * 2.2);
  const ch = Math.min(img.naturalHeight - y, hgt * 2.2);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(cw);
  canvas.height = Math.round(ch);
  canvas.getContext("2d").drawImage(img, x, y, cw, ch, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob((b) => resolve(new File([b], "face.jpg", { type: "image/jpeg" })), "image/jpeg", 0.92));
}

function zipResult(file) {
  const progress = uploadProgress([file]);
  const body = h("p", { class: "muted" }, "Enrolling…");
  const card = h("section", { class: "card result", "data-testid": "zip-result", "aria-label": file.name }, h("h2", {}, file.name), progress.el, body);
  (async () => {
    try {
      const report = await apiUpload("/v1/enroll/zip", filesForm("archive", [file]), progress.update);
      progress.done(`Files: ${fileCounts(report.files)}.`);
      body.textContent = `${report.people_created} people created, ${report.people_updated} updated, ${report.templates_added} templates added.`;
      card.append(fileReport(report.files));
    } catch (err) {
      progress.failed();
      body.textContent = `Refused: ${err.message}`;
      body.className = "message";
      body.setAttribute("role", "alert");
    }
  })();
  return card;
}
