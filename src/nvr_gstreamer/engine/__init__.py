"""The engine: every camera's runtime on the GStreamer loop, built from the pure logic in
:mod:`nvr_gstreamer.camera` and the adapters in :mod:`nvr_gstreamer.gst`."""
