"""A loopback RTSP server for the camera tests: gst-rtsp-server through python3-gi.

Run with Debian's ``/usr/bin/python3`` (gi is a Debian package; a venv cannot import it)::

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --clip path/to/clip.mp4 [--live]

Mounts (both shared by every client, bound to 127.0.0.1 only):

``/clip``  the clip's own H.264 passed through (no re-encode), looped with no gap
``/live``  (with ``--live``) a synthetic 640x480 25 fps camera (videotestsrc + x264enc)

Two pad probes make the shared media behave like a camera: (a) SEEKING queries answer
"not seekable", so FFmpeg's ``Range: npt=0-`` in PLAY does not restart the stream for every
client; (b) ``/clip`` loops with segment seeks pushed from pay0's sink pad, so the running
time (and every client's PTS) goes on across loops. It prints ``listening <port>`` once the
port is bound and stops on SIGTERM or SIGINT (or, with ``--exit-with-parent``,
when the process that started it dies).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

CLIP = "( filesrc location={clip} ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
LIVE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=25/1 ! videoconvert"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def _not_seekable(pad, info):
    query = info.get_query()
    if query is not None and query.type == Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.HANDLED  # the default answer (seekable=False) stays
    return Gst.PadProbeReturn.OK


def _configure(loop_clip: bool):
    def on_media_configure(factory, media):
        pay = media.get_element().get_by_name("pay0")
        pay.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, _not_seekable)
        if not loop_clip:
            return
        sink = pay.get_static_pad("sink")

        def seek(flags):
            event = Gst.Event.new_seek(
                1.0, Gst.Format.TIME, flags | Gst.SeekFlags.SEGMENT, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1
            )
            return sink.push_event(event)

        def on_event(pad, info):
            event = info.get_event()
            if event is not None and event.type == Gst.EventType.SEGMENT_DONE:  # one pass done: queue the next
                GLib.idle_add(lambda: seek(Gst.SeekFlags.NONE) and False)  # non-flushing: running time goes on
            return Gst.PadProbeReturn.OK

        media.connect("prepared", lambda m: seek(Gst.SeekFlags.FLUSH))
        sink.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_event)

    return on_media_configure


def _factory(launch: str, loop_clip: bool) -> GstRtspServer.RTSPMediaFactory:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    factory.connect("media-configure", _configure(loop_clip))
    return factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clip", required=True, help="an MP4 with H.264 video")
    parser.add_argument("--live", action="store_true", help="also serve /live (needs x264enc)")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--exit-with-parent", action="store_true", help="quit when the parent process dies")
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)  # the default is 0.0.0.0
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    clip = args.clip.replace("\\", "\\\\").replace('"', '\\"')
    mounts.add_factory("/clip", _factory(CLIP.format(clip=f'"{clip}"'), loop_clip=True))
    if args.live:
        mounts.add_factory("/live", _factory(LIVE, loop_clip=False))
    if server.attach(None) == 0:
        print(f"cannot listen on {args.address}:{args.port}", file=sys.stderr, flush=True)
        return 2

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, lambda: loop.quit() or False)
    if args.exit_with_parent:
        parent = os.getppid()

        def orphaned() -> bool:  # the test process died without stopping us
            if os.getppid() != parent:
                loop.quit()
                return False
            return True

        GLib.timeout_add(500, orphaned)
    print(f"listening {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
