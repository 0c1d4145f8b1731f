"""The desktop app (PySide6): live grid, recording controls, playback and export.

Threading rule: engine events and frames arrive on GStreamer threads and reach widgets only
through queued Qt signals (:class:`~nvr_gstreamer.gui.bridge.EngineBridge`); GStreamer work
runs on the engine's loop thread, the player's loop thread, or worker threads, never on the
GUI thread.
"""
