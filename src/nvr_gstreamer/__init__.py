"""nvr_gstreamer: a network video recorder on GStreamer."""

__version__ = "0.1.0"
