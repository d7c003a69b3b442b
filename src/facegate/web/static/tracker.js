// Smooths stream results so labels do not flicker: faces are followed across frames by box
// overlap, boxes glide, and a face's name is the majority of its last few decisions.

const VOTES = 5; // decisions remembered per face
const MAX_MISSES = 2; // results a face may be missing from before it is dropped
const GLIDE = 0.6; // weight of the new box position

function iou(a, b) {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const hgt = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (w <= 0 || hgt <= 0) return 0;
  const inter = w * hgt;
  const area = (r) => (r.x2 - r.x1) * (r.y2 - r.y1);
  return inter / (area(a) + area(b) - inter);
}

export class FaceTracker {
  constructor() {
    this.tracks = [];
    this.nextId = 1;
  }

  /** Update with one result's faces (each {box, decision}); returns the smoothed faces to draw. */
  update(faces) {
    const unmatched = new Set(this.tracks);
    const pairs = [];
    for (const face of faces) {
      for (const track of this.tracks) pairs.push({ face, track, overlap: iou(face.box, track.box) });
    }
    pairs.sort((a, b) => b.overlap - a.overlap);
    const placed = new Set();
    for (const { face, track, overlap } of pairs) {
      if (overlap < 0.3 || placed.has(face) || !unmatched.has(track)) continue;
      placed.add(face);
      unmatched.delete(track);
      track.box = glide(track.box, face.box);
      track.remember(face.decision);
    }
    for (const face of faces) {
      if (!placed.has(face)) this.tracks.push(new Track(this.nextId++, face));
    }
    for (const track of unmatched) track.misses += 1;
    this.tracks = this.tracks.filter((t) => t.misses <= MAX_MISSES);
    return this.tracks.filter((t) => t.misses === 0).map((t) => ({ id: t.id, box: t.box, decision: t.decision() }));
  }

  clear() {
    this.tracks = [];
  }
}

function glide(old, box) {
  const mix = (a, b) => a + GLIDE * (b - a);
  return { x1: mix(old.x1, box.x1), y1: mix(old.y1, box.y1), x2: mix(old.x2, box.x2), y2: mix(old.y2, box.y2) };
}

class Track {
  constructor(id, face) {
    this.id = id;
    this.box = face.box;
    this.votes = [];
    this.misses = 0;
    this.remember(face.decision);
  }

  remember(decision) {
    this.misses = 0;
    this.votes.push(decision || { status: "unknown", confidence: 0 });
    if (this.votes.length > VOTES) this.votes.shift();
  }

  /** The majority decision of the remembered ones (ties: the most recent), with its mean confidence. */
  decision() {
    const keyOf = (d) => (d.status === "match" ? d.person_id : "unknown");
    const tally = new Map();
    this.votes.forEach((d, i) => {
      const entry = tally.get(keyOf(d)) || { count: 0, last: 0, sum: 0, decision: d };
      entry.count += 1;
      entry.last = i;
      entry.sum += d.confidence;
      entry.decision = d;
      tally.set(keyOf(d), entry);
    });
    const best = [...tally.values()].sort((a, b) => b.count - a.count || b.last - a.last)[0];
    return { ...best.decision, confidence: best.sum / best.count };
  }
}
