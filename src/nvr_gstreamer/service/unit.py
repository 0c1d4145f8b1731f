"""``nvr service install|uninstall``: the systemd unit that runs ``nvr run`` on a box.

The unit (:func:`render_unit`) is ``Type=notify`` with a watchdog: ``nvr run`` says READY once
storage is claimed, the cameras started and the API bound, and pings the watchdog only while
every loop turns (:mod:`.watchdog`). It runs as a dedicated system user that owns the storage
root, with the file system read-only but for that root and its own state and cache folders.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UNIT_DIR = Path("/etc/systemd/system")
WATCHDOG_S = 30
STOP_TIMEOUT_S = 30  # every open segment is finalised before the process exits


class ServiceError(Exception):
    """Installing or removing the service failed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class UnitSpec:
    name: str  # the unit is {name}.service; state and cache folders are named so too
    executable: Path  # the `nvr` command
    config: Path
    storage: Path
    user: str
    watchdog_s: int = WATCHDOG_S


def _under_home(path: Path) -> bool:
    return any(path == p or p in path.parents for p in (Path("/home"), Path("/root")))


def render_unit(spec: UnitSpec) -> str:
    """The unit file's text."""
    # ProtectHome=yes hides /home and /root entirely; a program, config or recordings kept
    # there stay readable (and the recordings writable, through ReadWritePaths).
    paths = (spec.executable, spec.config, spec.storage)
    protect_home = "read-only" if any(_under_home(p) for p in paths) else "yes"
    return f"""\
# Written by `nvr service install`; `nvr service uninstall` removes it.
[Unit]
Description=nvr_gstreamer network video recorder
Documentation=https://github.com/nvr-gstreamer/nvr_gstreamer#running-as-a-service
Wants=network-online.target
After=network-online.target local-fs.target
# Never give up: a recorder that stopped restarting records nothing.
StartLimitIntervalSec=0

[Service]
Type=notify
NotifyAccess=main
ExecStart={spec.executable} run -c {spec.config}
User={spec.user}
Group={spec.user}
Restart=always
RestartSec=2
# Pinged every {spec.watchdog_s // 2} s while every loop turns; a stuck loop gets the service
# restarted, and start-up recovery repairs the open segments.
WatchdogSec={spec.watchdog_s}
TimeoutStopSec={STOP_TIMEOUT_S}
Environment=PYTHONUNBUFFERED=1
Environment=HOME=/var/lib/{spec.name}
Environment=XDG_CACHE_HOME=/var/cache/{spec.name}
StateDirectory={spec.name}
CacheDirectory={spec.name}
# Hardening: nothing but the storage root (and the two folders above) is writable.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={spec.storage}
PrivateTmp=yes
ProtectHome={protect_home}
PrivateDevices=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""


def nvr_executable() -> Path:
    """The `nvr` command of this installation (next to this Python)."""
    beside = Path(sys.executable).parent / "nvr"
    if beside.exists():
        return beside.absolute()
    found = shutil.which("nvr")
    if found is None:
        raise ServiceError("cannot find the `nvr` command; run scripts/setup")
    return Path(found).absolute()


def _run(*cmd: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise ServiceError(f"{cmd[0]} is not installed") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise ServiceError(f"`{' '.join(cmd)}` failed: {why[-1] if why else done.returncode}")


def ensure_user(user: str, home: Path) -> None:
    """A system user (and group) of that name, without a login."""
    try:
        pwd.getpwnam(user)
        return
    except KeyError:
        pass
    _run(
        "useradd", "--system", "--user-group", "--home-dir", str(home), "--no-create-home",
        "--shell", "/usr/sbin/nologin", "--comment", "nvr_gstreamer recorder", user,
    )  # fmt: skip


def hand_over(spec: UnitSpec) -> None:
    """The storage root belongs to the service's user; the config (it may hold camera
    passwords) is readable by that user's group, by nobody else."""
    entry = pwd.getpwnam(spec.user)
    gid = grp.getgrnam(spec.user).gr_gid
    spec.storage.mkdir(parents=True, exist_ok=True)
    for folder, _dirs, files in os.walk(spec.storage):
        os.chown(folder, entry.pw_uid, gid)
        for name in files:
            os.chown(os.path.join(folder, name), entry.pw_uid, gid, follow_symlinks=False)
    os.chown(spec.config, 0, gid)
    spec.config.chmod(0o640)


def install(spec: UnitSpec, unit_dir: Path = UNIT_DIR, start: bool = True) -> Path:
    """Create the user, hand over the storage root, write the unit, enable and start it."""
    if os.geteuid() != 0:
        raise ServiceError("installing a service needs root (sudo nvr service install …)")
    ensure_user(spec.user, Path("/var/lib") / spec.name)
    hand_over(spec)
    unit_dir.mkdir(parents=True, exist_ok=True)
    path = unit_dir / f"{spec.name}.service"
    tmp = path.with_suffix(".service.tmp")
    tmp.write_text(render_unit(spec))
    tmp.replace(path)
    if start:
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", f"{spec.name}.service")
    return path


def uninstall(name: str, unit_dir: Path = UNIT_DIR, stop: bool = True) -> Path | None:
    """Stop and disable the service and remove its unit; the user and recordings stay."""
    if os.geteuid() != 0:
        raise ServiceError("removing a service needs root (sudo nvr service uninstall)")
    path = unit_dir / f"{name}.service"
    if stop:
        _systemctl("disable", "--now", f"{name}.service")
    existed = path.exists()
    path.unlink(missing_ok=True)
    if stop:
        _systemctl("daemon-reload")
    return path if existed else None


def _systemctl(*args: str) -> None:
    if not Path("/run/systemd/system").is_dir():
        raise ServiceError(
            f"systemd is not running on this machine: cannot `systemctl {' '.join(args)}`"
        )
    _run("systemctl", *args)
