// Enrol page: guided capture from the webcam (name -> camera -> auto-capture of good,
// varied frames -> review -> save), or enrolment from uploaded photos.
// Before a shot is kept, the server checks it with the kept ones (/v1/enroll/check): every
// kept pair must be one person, so a second person in view stops the capture. After saving,
// the page says who else enrolled is most like the new person, and warns of a lookalike.

import { api, apiUpload, filesForm } from "./api.js";
import { CameraError, closeCamera, grabFrame, openCamera, videoStage } from "./camera.js";
import { fileCounts, h, placeBox, say, uploadProgress } from "./dom.js";
import { adviceFor, ANOTHER_PERSON, DEFAULT_MAX_YAW, judge, sameAsKept, SHOTS } from "./guidance.js";

export function render(root) {
  let cleanup = () => {};
  const nameInput = h("input", { id: "enrol-name", name: "name", required: true, maxlength: 200, autocomplete: "off" });
  const startForm = h(
    "form",
    { class: "card", id: "guided-form" },
    h("h2", {}, "With the camera"),
    h("p", {}, "Facegate takes a few good shots of one face, asking you to turn a little between them."),
    h("label", { for: "enrol-name" }, "Name"),
    nameInput,
    h("button", { type: "submit", id: "start-capture" }, "Start camera"),
  );
  const workArea = h("section", { id: "capture", "aria-label": "Guided capture" });
  root.append(h("h1", {}, "Enrol a person"), startForm, workArea, photoForm());

  startForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!name) return;
    cleanup();
    startForm.hidden = true;
    cleanup = guidedCapture(workArea, name, () => {
      startForm.hidden = false;
      workArea.replaceChildren();
    });
  });
  return () => cleanup();
}

function guidedCapture(area, name, restart) {
  const { stage, video, overlay } = videoStage(h);
  const advice = h("p", { class: "advice", id: "advice", role: "status", "aria-live": "polite" }, "Starting the camera…");
  const progress = h("progress", { max: SHOTS, value: 0, id: "capture-progress", "aria-label": "Shots taken" });
  const strip = h("div", { class: "shots", id: "shots" });
  const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
  area.replaceChildren(h("h2", {}, `Capturing ${name}`), advice, stage, progress, strip, cancel);

  const kept = [];
  let maxYaw = DEFAULT_MAX_YAW;
  let stream = null;
  let stopped = false;
  const stop = () => {
    stopped = true;
    closeCamera(stream);
  };
  cancel.addEventListener("click", () => {
    stop();
    restart();
  });

  (async () => {
    try {
      stream = await openCamera(video);
    } catch (err) {
      advice.textContent = err instanceof CameraError ? err.message : String(err);
      advice.setAttribute("role", "alert");
      return;
    }
    while (!stopped && kept.length < SHOTS) {
      if (video.readyState < 2) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const frame = await grabFrame(video, 960, 0.92);
      let detected;
      try {
        detected = await api("/v1/detect?max_faces=3", { method: "POST", form: filesForm("image", [frame.blob]) });
      } catch (err) {
        advice.textContent = `The server refused the frame: ${err.message}`;
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (stopped) return;
      overlay.replaceChildren(
        ...detected.faces.map((f) => {
          const box = h("div", { class: "face guide" });
          placeBox(box, f.box, detected.width, detected.height);
          return box;
        }),
      );
      const verdict = judge(detected, kept, performance.now(), maxYaw);
      advice.textContent = verdict.advice;
      if (verdict.keep) {
        let check;
        try {
          check = await checkShot(kept, frame.blob);
        } catch (err) {
          advice.textContent = `The server refused the shot: ${err.message}`;
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        if (stopped) return;
        maxYaw = check.max_yaw;
        const candidate = check.files[check.files.length - 1];
        if (!candidate.usable) {
          advice.textContent = adviceFor(candidate.code);
          await new Promise((r) => setTimeout(r, 300));
          continue;
        }
        const same = sameAsKept(check, candidate.source, kept.length);
        if (same === "another") {
          stop();
          anotherPerson(area, name, restart);
          return;
        }
        if (same === "unsure") {
          advice.textContent = "Hold still and look at the camera";
          await new Promise((r) => setTimeout(r, 300));
          continue;
        }
        const face = detected.faces[0];
        kept.push({ blob: frame.blob, pose: verdict.pose, quality: face.quality, at: performance.now() });
        strip.append(h("img", { src: thumbnail(frame.canvas, face.box), alt: `Shot ${kept.length}`, class: "shot" }));
        progress.value = kept.length;
      }
    }
    if (stopped) return;
    stop();
    review(area, name, kept, restart);
  })();
  return stop;
}

/** Ask the server whether a candidate shot is usable and the same person as every kept shot. */
function checkShot(kept, blob) {
  const shots = kept.map((k, i) => new File([k.blob], `shot-${i + 1}.jpg`, { type: "image/jpeg" }));
  const candidate = new File([blob], "candidate.jpg", { type: "image/jpeg" });
  return api("/v1/enroll/check", { method: "POST", form: filesForm("images", [...shots, candidate]) });
}

/** The capture stopped because a second person came into view: say so, and offer to start again. */
function anotherPerson(area, name, restart) {
  const again = h("button", { type: "button", id: "capture-again" }, "Start again");
  again.addEventListener("click", restart);
  area.replaceChildren(
    h("h2", {}, `Capturing ${name}`),
    h("p", { class: "message", id: "capture-stopped", role: "alert" }, ANOTHER_PERSON),
    again,
  );
  again.focus();
}

/** How distinct an enrolled person is: the closest other person, and any warning (e.g. a lookalike). */
export function distinctness(result) {
  const closest = result.closest;
  const line = closest
    ? `Closest other person: ${closest.name} (similarity ${closest.similarity.toFixed(3)}${closest.confusable ? "" : ", clearly distinct"}).`
    : "Nobody else in this collection to compare with yet.";
  return h(
    "div",
    { class: "distinct", "data-testid": "distinctness" },
    h("p", { "data-testid": "closest" }, line),
    (result.warnings || []).map((w) => h("p", { class: "message", role: "alert", "data-code": w.code }, `Warning: ${w.detail}`)),
  );
}

/** A square crop around a face box, as a data URL. */
function thumbnail(canvas, box) {
  const side = Math.max(box.x2 - box.x1, box.y2 - box.y1) * 1.4;
  const cx = (box.x1 + box.x2) / 2;
  const cy = (box.y1 + box.y2) / 2;
  const out = document.createElement("canvas");
  out.width = out.height = 96;
  out.getContext("2d").drawImage(canvas, cx - side / 2, cy - side / 2, side, side, 0, 0, 96, 96);
  return out.toDataURL("image/jpeg", 0.85);
}

function review(area, name, kept, restart) {
  const images = [...area.querySelectorAll("#shots img")];
  const choices = kept.map((shot, i) => {
    const box = h("input", { type: "checkbox", checked: true, id: `shot-${i}` });
    const img = images[i];
    return { shot, box, cell: h("label", { class: "shot-choice", for: `shot-${i}` }, img, box, `Shot ${i + 1}`) };
  });
  const save = h("button", { type: "button", id: "save-person" }, `Save ${name}`);
  const again = h("button", { type: "button", class: "quiet" }, "Start over");
  area.replaceChildren(
    h("h2", {}, `Keep these shots of ${name}?`),
    h("p", {}, "Untick any shot that is not a good picture of this person."),
    h("div", { class: "shots" }, choices.map((c) => c.cell)),
    h("div", { class: "row" }, save, again),
  );
  save.focus();
  again.addEventListener("click", restart);
  save.addEventListener("click", async () => {
    const blobs = choices.filter((c) => c.box.checked).map((c, i) => new File([c.shot.blob], `capture-${i + 1}.jpg`));
    if (!blobs.length) {
      say("Keep at least one shot", "error");
      return;
    }
    save.disabled = true;
    try {
      const person = await createWithPhotos(name, blobs);
      area.replaceChildren(
        h("h2", { id: "enrol-done", tabindex: "-1" }, `${person.name} is enrolled`),
        h("p", {}, `${person.template_count} face templates saved. `, h("a", { href: "#/live" }, "Go to the live page"), " to see it work."),
        distinctness(person),
        h("p", {}, h("a", { href: `#/people/${person.id}` }, `Open ${person.name}'s page`)),
        h("button", { type: "button", class: "quiet", onclick: restart }, "Enrol someone else"),
      );
      area.querySelector("#enrol-done").focus();
    } catch (err) {
      save.disabled = false;
      say(`Could not save: ${err.message}`, "error");
    }
  });
}

/**
 * Create a person and add the largest face of each file; deletes the person again if no face was usable.
 * ``onProgress(loaded, total)`` follows the upload of the photos.
 */
export async function createWithPhotos(name, files, onProgress) {
  const person = await api("/v1/people", { method: "POST", json: { name } });
  try {
    const added = await apiUpload(`/v1/people/${person.id}/faces`, filesForm("images", files), onProgress);
    return { ...added.person, report: added.files, closest: added.closest, warnings: added.warnings };
  } catch (err) {
    await api(`/v1/people/${person.id}`, { method: "DELETE" }).catch(() => {});
    throw err;
  }
}

function photoForm() {
  const name = h("input", { id: "photo-name", required: true, maxlength: 200, autocomplete: "off" });
  const files = h("input", { id: "photo-files", type: "file", accept: "image/*", multiple: true, required: true });
  const report = h("div", { id: "photo-report", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "card", id: "photo-form" },
    h("h2", {}, "From photos"),
    h("p", {}, "One to twenty photos of the same person; the largest face of each is used."),
    h("label", { for: "photo-name" }, "Name"),
    name,
    h("label", { for: "photo-files" }, "Photos"),
    files,
    h("button", { type: "submit", id: "photo-submit" }, "Enrol"),
    report,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    const chosen = [...files.files];
    const progress = uploadProgress(chosen, ["photo", "photos"]);
    report.replaceChildren(progress.el);
    try {
      const person = await createWithPhotos(name.value.trim(), chosen, progress.update);
      progress.done(fileCounts(person.report));
      report.replaceChildren(
        progress.el,
        h("p", { id: "photo-done" }, `${person.name} is enrolled with ${person.template_count} templates. `, h("a", { href: `#/people/${person.id}` }, "Open")),
        distinctness(person),
        fileReport(person.report),
      );
      form.reset();
    } catch (err) {
      progress.failed();
      report.replaceChildren(progress.el, h("p", { class: "message", role: "alert" }, `Not enrolled: ${err.message}`));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** The per-file report of an enrolment. */
export function fileReport(files) {
  return h(
    "ul",
    { class: "report" },
    (files || []).map((f) =>
      h("li", { class: f.status }, `${f.source}: ${f.status === "added" ? `added (quality ${Math.round((f.quality || 0) * 100)}%)` : `skipped — ${f.detail}`}`),
    ),
  );
}
