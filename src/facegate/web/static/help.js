// The built-in guide.

import { h } from "./dom.js";

export function render(root) {
  root.append(
    h("h1", {}, "How to use facegate"),
    h(
      "ol",
      { class: "guide" },
      h("li", {}, h("strong", {}, "Enrol someone. "), "Open ", h("a", { href: "#/enrol" }, "Enrol"), ", type a name and start the camera. Look at the camera and follow the hints (come closer, turn a little); five good shots are taken, then you confirm them. Or enrol from a few photos."),
      h("li", {}, h("strong", {}, "Recognise live. "), "Open ", h("a", { href: "#/live" }, "Live"), " and allow the camera. Every face gets a box: green is a match that is right 90% of the time or more, amber a match that is right less often (its percentage says how often), red is Unknown, with the reason when the face itself was the problem (too small, blurred, turned away, two people alike)."),
      h("li", {}, h("strong", {}, "Recognise photos. "), h("a", { href: "#/upload" }, "Upload"), " photos to see every face named; add a face to a person or start a new person from it. A ZIP with a folder per person enrols everyone at once."),
      h("li", {}, h("strong", {}, "Find people in a video. "), h("a", { href: "#/video" }, "Video"), " analyses a video file on the server: a timeline shows who appears when (a bar jumps the player there), unknown faces can be enrolled, and the result downloads as JSON or CSV."),
      h("li", {}, h("strong", {}, "Manage people. "), h("a", { href: "#/people" }, "People"), " lists everyone; a person's page renames them, adds photos, removes a face template or deletes the person with all their data."),
      h("li", {}, h("strong", {}, "Keep separate galleries. "), h("a", { href: "#/collections" }, "Collections"), " creates, renames and deletes collections (deleting one erases everyone in it, after you confirm); the Collection picker at the top chooses the one every page works in."),
      h("li", {}, h("strong", {}, "Watch cameras. "), h("a", { href: "#/cameras" }, "Cameras"), " adds IP cameras (RTSP or HTTP MJPEG) or cameras attached to the server; the server watches them all the time and each shows its live view, its state and who is in front of it now."),
      h("li", {}, h("strong", {}, "Follow events. "), h("a", { href: "#/events" }, "Events"), " shows who was recognised where as it happens, searches and exports the history as CSV, sums up attendance per day (with an HR check-in export) and sends events to your own systems through webhooks."),
    ),
    h("h2", {}, "Good to know"),
    h(
      "ul",
      {},
      h("li", {}, "Everything runs on this server: images are not sent anywhere else."),
      h("li", {}, "Recognition says Unknown rather than guess: a name appears only when the face is close enough to that person's templates."),
      h("li", {}, "Three to five varied shots per person work best: in good light, looking straight and turned a little each way."),
      h("li", {}, "When the server requires an API key, the API key button (top right) stores one in this browser."),
      h("li", {}, "Programs can do all of this too: see the ", h("a", { href: "/docs" }, "API documentation"), "."),
    ),
  );
}
