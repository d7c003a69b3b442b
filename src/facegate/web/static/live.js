// Live page: the webcam at its own frame rate, frames sent to /v1/stream one at a time
// (the next frame is taken only when the previous answer arrives, so the video never waits
// and latency stays bounded), and an overlay of every face's box, name and confidence.

import { streamProtocols, streamUrl } from "./api.js";
import { CameraError, closeCamera, grabFrame, listCameras, mirrored, openCamera, videoStage } from "./camera.js";
import { describeDecision, faceBox, h, percent } from "./dom.js";
import { FaceTracker } from "./tracker.js";

const ANSWER_TIMEOUT_MS = 5000;

export function render(root) {
  const { stage, video, overlay } = videoStage(h);
  const cameraSelect = h("select", { id: "camera-select" });
  const pauseButton = h("button", { type: "button", id: "pause", "aria-pressed": "false" }, "Pause");
  const mirror = h("input", { type: "checkbox", id: "mirror", checked: mirrored.get() });
  mirror.addEventListener("change", () => {
    mirrored.set(mirror.checked);
    stage.classList.toggle("mirrored", mirror.checked);
  });
  const stats = h("p", { class: "stats", id: "live-stats", "aria-live": "off" }, "Starting the camera…");
  const message = h("p", { class: "message", role: "alert" });
  const people = h("ul", { class: "sr-list", "aria-label": "Faces in view", id: "live-faces" });
  root.append(
    h("h1", {}, "Live"),
    h(
      "div",
      { class: "controls" },
      h("label", { for: "camera-select" }, "Camera"),
      cameraSelect,
      pauseButton,
      h("label", { class: "check" }, mirror, "Mirror view"),
    ),
    message,
    stage,
    stats,
    h("h2", { class: "visually-hidden" }, "Faces in view"),
    people,
  );

  const tracker = new FaceTracker();
  let stream = null;
  let socket = null;
  let closed = false;
  let paused = false;
  let inFlight = null; // {sentAt} of the frame awaiting its answer
  let freshFrame = true; // a video frame arrived since the last one sent (always true without rVFC)
  let frameSize = { width: 1, height: 1 };
  const rates = { video: meter(), answers: meter() };
  let latencyMs = 0;

  async function start(deviceId) {
    closeCamera(stream);
    message.textContent = "";
    try {
      stream = await openCamera(video, deviceId);
    } catch (err) {
      stats.textContent = "";
      message.textContent = err instanceof CameraError ? err.message : String(err);
      stage.hidden = true;
      pauseButton.disabled = true;
      cameraSelect.disabled = true;
      return;
    }
    stage.hidden = false;
    pauseButton.disabled = false;
    setPaused(false); // a newly chosen camera starts running
    await fillCameras(cameraSelect, stream);
    tracker.clear();
    if (!socket) {
      countVideoFrames();
      connect();
    }
  }

  function countVideoFrames() {
    if (!("requestVideoFrameCallback" in video)) return;
    freshFrame = false;
    const tick = () => {
      if (closed) return;
      rates.video.tick();
      if (!freshFrame) {
        freshFrame = true;
        sendNext();
      }
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  }

  function connect() {
    if (closed) return;
    socket = new WebSocket(streamUrl(), streamProtocols());
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      inFlight = null;
      if (closed) return;
      if (event.code === 4401 || event.code === 4403) {
        message.textContent = "The server needs an API key with the recognize scope (API key button, top right).";
        return;
      }
      stats.textContent = "Connection lost; reconnecting…";
      setTimeout(connect, 1000);
    });
  }

  function onMessage(msg) {
    if (msg.type === "ready") {
      sendNext();
      return;
    }
    if (msg.type === "result") {
      latencyMs = performance.now() - (inFlight ? inFlight.sentAt : performance.now());
      inFlight = null;
      if (paused) return; // an answer that was on its way when the user paused
      rates.answers.tick();
      frameSize = { width: msg.width, height: msg.height };
      // the server's track decides (fused over the face's frames); a frame's own decision only without one
      draw(tracker.update(msg.faces.map((f) => ({ id: f.track_id, box: f.box, decision: f.track || f.decision }))));
      showStats(msg);
    } else if (msg.type === "error") {
      inFlight = null;
      message.textContent = `Frame refused: ${msg.detail}`;
    }
    sendNext();
  }

  async function sendNext() {
    if (closed || paused || inFlight || !socket || socket.readyState !== WebSocket.OPEN) return;
    if (video.readyState < 2 || !video.videoWidth) {
      setTimeout(sendNext, 50);
      return;
    }
    if (!freshFrame) return; // the same picture again: wait for the camera's next frame
    if ("requestVideoFrameCallback" in video) freshFrame = false;
    inFlight = { sentAt: performance.now() };
    const { blob } = await grabFrame(video);
    if (closed || !socket || socket.readyState !== WebSocket.OPEN) {
      inFlight = null;
      return;
    }
    inFlight.sentAt = performance.now();
    socket.send(blob);
    const mine = inFlight;
    setTimeout(() => {
      if (inFlight === mine) {
        inFlight = null; // no answer: do not stall forever
        sendNext();
      }
    }, ANSWER_TIMEOUT_MS);
  }

  function draw(faces) {
    overlay.replaceChildren(
      ...faces.map((f) => faceBox(f.box, frameSize.width, frameSize.height, describeDecision(f.decision), { "data-track": f.id })),
    );
    people.replaceChildren(
      ...faces.map((f) => {
        const d = describeDecision(f.decision);
        if (d.name === "pending") return h("li", {}, "… (checking who this is)");
        return h("li", {}, d.name === "unknown" ? d.label.replace("Unknown", "Unknown person") : `${d.label} (${percent(d.confidence)})`);
      }),
    );
  }

  function showStats(msg) {
    stats.textContent =
      `Video ${rates.video.rate().toFixed(0)} fps · recognised ${rates.answers.rate().toFixed(1)} fps · ` +
      `latency ${latencyMs.toFixed(0)} ms (server ${msg.processing_ms.toFixed(0)} ms)`;
  }

  function setPaused(value) {
    if (value === paused) return;
    paused = value;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    if (paused) {
      video.pause();
      overlay.replaceChildren();
      people.replaceChildren();
      tracker.clear();
      stats.textContent = "Paused";
    } else {
      video.play();
      sendNext();
    }
  }

  pauseButton.addEventListener("click", () => setPaused(!paused));
  cameraSelect.addEventListener("change", () => start(cameraSelect.value));

  start();
  return () => {
    closed = true;
    if (socket) socket.close();
    closeCamera(stream);
  };
}

/** Fill the camera <select> and select the one in use. */
export async function fillCameras(select, stream) {
  const cameras = await listCameras();
  const current = stream.getVideoTracks()[0]?.getSettings().deviceId;
  select.replaceChildren(
    ...cameras.map((c, i) => h("option", { value: c.deviceId, selected: c.deviceId === current }, c.label || `Camera ${i + 1}`)),
  );
  select.disabled = cameras.length < 2;
}

/** Events per second over the last two seconds. */
function meter() {
  const times = [];
  return {
    tick() {
      const now = performance.now();
      times.push(now);
      while (times.length && now - times[0] > 2000) times.shift();
    },
    rate() {
      if (times.length < 2) return 0;
      return ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]);
    },
  };
}
