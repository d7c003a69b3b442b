// What guided capture tells the person in front of the camera, and which frames it keeps.

export const SHOTS = 5;
const GOOD_SCORE = 0.5; // a frame's quality score must reach this to be kept
const MIN_POSE_CHANGE = 5; // degrees of yaw/pitch from every kept shot, for variety
const MIN_GAP_MS = 400; // between two kept shots
const STILL_GAP_MS = 2500; // a person who cannot turn: keep a good frame after this long anyway
// degrees of yaw beyond which a shot is not kept: the server's ``enrol_max_yaw`` (each
// /v1/enroll/check answer says it; this is its default until the first answer)
export const DEFAULT_MAX_YAW = 40;
// The one message for a second person in the series (the capture stops).
export const ANOTHER_PERSON = "Another person came into view — capture stopped; start again with one person";

const ADVICE = {
  too_small: "Come closer",
  blurry: "Hold still",
  turned: "Look at the camera",
  tilted_up_down: "Keep your head level",
  tilted_sideways: "Straighten your head",
  too_dark: "More light, please",
  too_bright: "Too bright: turn away from the light",
};

/** The pose bin of a face: where the person is looking. */
export function poseOf(quality) {
  if (quality.yaw > 8) return "left";
  if (quality.yaw < -8) return "right";
  return "front";
}

const WANTED = ["front", "left", "right"];
const ASK = { front: "Look straight at the camera", left: "Turn a little to your left", right: "Turn a little to your right" };

/** What to tell the person when the server refuses a shot (a /v1/enroll/check file ``code``). */
export function adviceFor(code) {
  return code === "face_turned" ? "Turn back toward the camera" : code === "multiple_faces" ? "Only one person in view, please" : "Look at the camera";
}

/**
 * What the kept shots say about a candidate shot (its name in a /v1/enroll/check answer):
 * "keep" when it is the same person as every kept shot, "another" when it matches none of them
 * (a second person: the capture stops), "unsure" when it matches some only (not kept).
 */
export function sameAsKept(check, candidate, keptCount) {
  if (keptCount === 0) return "keep";
  const withKept = check.pairs.filter((p) => p.a === candidate || p.b === candidate);
  const same = withKept.filter((p) => p.same).length;
  if (same === 0) return "another";
  return same === keptCount && withKept.length === keptCount ? "keep" : "unsure";
}

/**
 * Judge one /v1/detect answer against the shots kept so far (``maxYaw``: the server's limit).
 * Returns {keep: bool, advice: string, ready: bool} — ``ready`` once enough shots are kept.
 */
export function judge(detected, kept, now, maxYaw = DEFAULT_MAX_YAW) {
  if (kept.length >= SHOTS) return { keep: false, advice: "Done", ready: true };
  const faces = detected.faces;
  if (faces.length === 0) return { keep: false, advice: "Look at the camera: no face found" };
  if (faces.length > 1) return { keep: false, advice: "Only one person in view, please" };
  const q = faces[0].quality;
  if (!q) return { keep: false, advice: "Look at the camera" };
  if (Math.abs(q.yaw) > maxYaw) return { keep: false, advice: "Turn back toward the camera" };
  if (q.score < GOOD_SCORE) {
    const worst = q.reasons.find((r) => ADVICE[r]) || "turned";
    return { keep: false, advice: ADVICE[worst] };
  }
  const pose = poseOf(q);
  const missing = WANTED.filter((p) => !kept.some((k) => k.pose === p));
  const last = kept.length ? kept[kept.length - 1].at : -Infinity;
  const sinceLast = now - last;
  const varied = kept.every((k) => Math.hypot(k.quality.yaw - q.yaw, k.quality.pitch - q.pitch) >= MIN_POSE_CHANGE);
  const keep =
    sinceLast >= MIN_GAP_MS && (missing.includes(pose) || (varied && missing.length === 0) || sinceLast >= STILL_GAP_MS);
  const stillMissing = missing.filter((p) => !(keep && p === pose));
  const advice = stillMissing.length ? ASK[stillMissing[0]] : "Good, move your head a little";
  return { keep, advice: keep ? `Got it. ${advice}` : advice, pose };
}
