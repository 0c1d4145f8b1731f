"""Running as a system service: the systemd unit, the notify protocol and its watchdog."""
