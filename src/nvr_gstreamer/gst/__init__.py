"""The GStreamer layer: the only place (with the simulator) that imports ``gi``."""
