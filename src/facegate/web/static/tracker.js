// Display smoothing of the stream's faces. The server follows faces across frames (each face has
// a ``track_id``) and decides who a track is over its frames (``track``): the page only makes the
// boxes glide from one answer to the next, and keeps a face that misses an answer or two.

const MAX_MISSES = 2; // answers a face may be missing from before it is dropped
const GLIDE = 0.6; // weight of the new box position

export class FaceTracker {
  constructor() {
    this.tracks = new Map(); // track id -> {id, box, decision, misses}
    this.anonymous = 0; // faces without a track id (an older server) get one id per answer
  }

  /** Update with one answer's faces (each {id, box, decision}); returns the smoothed faces to draw. */
  update(faces) {
    const present = new Set();
    for (const face of faces) {
      const id = face.id ?? `face-${++this.anonymous}`;
      present.add(id);
      const known = this.tracks.get(id);
      this.tracks.set(id, {
        id,
        box: known ? glide(known.box, face.box) : face.box,
        decision: face.decision,
        misses: 0,
      });
    }
    for (const [id, track] of this.tracks) {
      if (present.has(id)) continue;
      track.misses += 1;
      if (track.misses > MAX_MISSES || typeof id === "string") this.tracks.delete(id);
    }
    return [...this.tracks.values()].filter((t) => t.misses === 0).map(({ id, box, decision }) => ({ id, box, decision }));
  }

  clear() {
    this.tracks.clear();
  }
}

function glide(old, box) {
  const mix = (a, b) => a + GLIDE * (b - a);
  return { x1: mix(old.x1, box.x1), y1: mix(old.y1, box.y1), x2: mix(old.x2, box.x2), y2: mix(old.y2, box.y2) };
}
