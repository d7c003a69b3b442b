// The webcam: open a camera, list cameras, grab frames as JPEG, explain failures.

/** Open a camera (a given device, or the default) into a <video>; resolves the MediaStream. */
export async function openCamera(video, deviceId) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new CameraError("This browser cannot use a camera here (a camera needs https or localhost).");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { deviceId: { exact: deviceId } } : { width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (err) {
    throw new CameraError(explain(err));
  }
  video.srcObject = stream;
  video.muted = true;
  video.playsInline = true;
  await video.play();
  return stream;
}

export class CameraError extends Error {}

function explain(err) {
  switch (err && err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera access was refused. Allow the camera for this site in the browser's address bar, then try again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found. Connect a camera, or use Upload to recognise photos.";
    case "NotReadableError":
      return "The camera is in use by another program. Close it and try again.";
    default:
      return `The camera could not be opened (${(err && err.message) || err}).`;
  }
}

/** Stop every track of a stream (turns the camera light off). */
export function closeCamera(stream) {
  if (stream) stream.getTracks().forEach((t) => t.stop());
}

/** The video inputs the browser knows (labels appear once camera access was granted). */
export async function listCameras() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === "videoinput");
}

/** The current video frame scaled to at most ``maxWidth``, as {blob, width, height, canvas}. */
export function grabFrame(video, maxWidth = 640, quality = 0.8) {
  const scale = Math.min(1, maxWidth / video.videoWidth);
  const width = Math.round(video.videoWidth * scale);
  const height = Math.round(video.videoHeight * scale);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(video, 0, 0, width, height);
  return new Promise((resolve) => canvas.toBlob((blob) => resolve({ blob, width, height, canvas }), "image/jpeg", quality));
}

const MIRROR = "facegate.mirror";

/** Whether camera views are shown mirrored, like a mirror (the default), or as the camera sees. */
export const mirrored = {
  get: () => localStorage.getItem(MIRROR) !== "0",
  set: (value) => localStorage.setItem(MIRROR, value ? "1" : "0"),
};

/** A cell with a <video> and an overlay layer on top of it (boxes placed in % of the frame). */
export function videoStage(h) {
  const video = h("video", { autoplay: true, muted: true, playsinline: true, "aria-label": "Camera view" });
  const overlay = h("div", { class: "overlay", "aria-live": "off" });
  const stage = h("div", { class: mirrored.get() ? "stage mirrored" : "stage" }, video, overlay);
  return { stage, video, overlay };
}
