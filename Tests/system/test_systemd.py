"""The kflow Debian package under a real systemd: a Debian 12 guest booted with systemd-nspawn.

The tests run in file order against one guest and one installation, as an administrator would use it:
install, start, send flows, reload under load, lose a worker, hang the master, stop, purge.
A Tansu broker runs inside the guest (it has only its own loopback); the flow sender and the Kafka
reader are host programs run in the guest's network namespace (Tests/system/flowtool.py).

Needs root, systemd-nspawn, the cached root file system (scripts/nspawn-rootfs.sh) and the package
(scripts/deb.sh, or KFLOW_DEB=path). scripts/system-test.sh does all of it. Nothing is skipped: a
guest that cannot boot fails every test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guest import Guest, GuestError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEPS = Path(os.environ.get("KFLOW_DEPS", "/opt/kflow-deps"))
ROOTFS = Path(os.environ.get("KFLOW_NSPAWN_ROOT", DEPS / "nspawn-bookworm"))
PYTHON = str(DEPS / "venv" / "bin" / "python")
FLOWTOOL = str(Path(__file__).resolve().parent / "flowtool.py")
GUEST_DEB_DIR = "/mnt/kflow-deb"
UNIT = "kflow.service"
# The watchdog test shortens WatchdogSec with a runtime drop-in so that it takes seconds, not a minute.
TEST_WATCHDOG_SECONDS = 6
# Paths an installed package may touch that the purge check ignores: dpkg's and systemd's own state,
# logs and caches, runtime and temporary directories.
VOLATILE_PREFIXES = ("/var/lib/dpkg/", "/var/log/", "/var/cache/", "/var/tmp/", "/tmp/",
                     "/run/", "/proc/", "/sys/", "/dev/", "/etc/ld.so.cache",
                     # the group database's backups, written when postinst adds group kflow-config
                     "/etc/group-", "/etc/gshadow-")


def find_deb() -> Path:
    given = os.environ.get("KFLOW_DEB")
    if given:
        return Path(given).resolve()
    debs = sorted((REPO / "out" / "deb").glob("kflow_*.deb"), key=lambda p: p.stat().st_mtime)
    if not debs:
        raise FileNotFoundError("no kflow_*.deb in out/deb: run `make deb` (or set KFLOW_DEB)")
    return debs[-1]


@pytest.fixture(scope="module")
def deb() -> Path:
    return find_deb()


@pytest.fixture(scope="module")
def guest(deb: Path, tmp_path_factory):
    tansu = (DEPS / "bin" / "tansu").resolve()
    log = tmp_path_factory.mktemp("nspawn") / "nspawn.log"
    instance = Guest(ROOTFS, log, binds_ro={str(tansu): "/usr/local/bin/tansu", str(deb.parent): GUEST_DEB_DIR})
    instance.boot()  # raises GuestError (a failure, never a skip) when the guest cannot boot
    try:
        url = "tcp://127.0.0.1:9092"
        instance.run(["systemd-run", "--unit=kafka", "--property=Restart=on-failure", "/usr/local/bin/tansu",
                      "broker", "--listener-url", url, "--advertised-listener-url", url,
                      "--storage-engine", "memory://tansu/"])
        wait_for(lambda: tcp_open(instance, 9092), 15, "the broker in the guest listening on 9092")
        yield instance
    finally:
        instance.shutdown()


# -- helpers -------------------------------------------------------------------------------------------

def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def tcp_open(guest: Guest, port: int) -> bool:
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=1)"
    return subprocess.run(guest.netns_argv([PYTHON, "-c", probe]), capture_output=True).returncode == 0


def unit_properties(guest: Guest, *names: str) -> dict[str, str]:
    out = guest.run(["systemctl", "show", UNIT, "-p", ",".join(names)]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main_pid(guest: Guest) -> int:
    return int(unit_properties(guest, "MainPID")["MainPID"])


def worker_pids(guest: Guest, master: int) -> list[int]:
    out = guest.run(["ps", "-o", "pid=,comm=", "--ppid", str(master)], check=False).stdout
    return sorted(int(pid) for pid, comm in (line.split(None, 1) for line in out.splitlines())
                  if comm.strip() == "kflow-worker")


def journal(guest: Guest, since: str | None = None) -> str:
    argv = ["journalctl", "--no-pager", "-o", "short-monotonic", "-u", UNIT]
    if since:
        argv += ["--since", since]
    return guest.run(argv, check=False).stdout


def guest_now(guest: Guest) -> str:
    return guest.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()


def send_flows(guest: Guest, batch: int, count: int, rate: float = 4000, extra: list[str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        guest.netns_argv([PYTHON, FLOWTOOL, "send", "--batch", str(batch), "--count", str(count), "--rate", str(rate),
                          *(extra or [])]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 60) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"flow sender failed ({process.returncode}): {err}"
    return out


def collect(guest: Guest, batch: int, count: int, timeout: float = 30) -> dict:
    result = subprocess.run(
        guest.netns_argv([PYTHON, FLOWTOOL, "collect", "--batch", str(batch), "--count", str(count),
                          "--timeout", str(timeout)]),
        capture_output=True, text=True, timeout=timeout + 30)
    lines = result.stdout.strip().splitlines()
    assert lines, f"flowtool collect printed nothing: {result.stderr}"
    return json.loads(lines[-1])


def present(guest: Guest, batch: int) -> int:
    result = subprocess.run(guest.netns_argv([PYTHON, FLOWTOOL, "absent", "--batch", str(batch), "--wait", "2"]),
                            capture_output=True, text=True, timeout=60)
    return json.loads(result.stdout.strip().splitlines()[-1])["found"]


def assert_all_delivered(guest: Guest, batch: int, count: int, context: str) -> None:
    outcome = collect(guest, batch, count)
    assert outcome["found"] == count and outcome["duplicates"] == 0 and not outcome["wrong"], (
        f"{context}: expected {count} records of batch {batch} exactly once, got {outcome}\n"
        f"--- journal ---\n{journal(guest)[-4000:]}")


def wait_active(guest: Guest, timeout: float = 30) -> dict[str, str]:
    def active():
        props = unit_properties(guest, "ActiveState", "SubState", "MainPID")
        return props if props["ActiveState"] == "active" and props["SubState"] == "running" else None
    try:
        return wait_for(active, timeout, f"{UNIT} active (running)")
    except AssertionError as error:
        status = guest.run(["systemctl", "status", "--no-pager", "-n", "0", UNIT], check=False).stdout
        raise AssertionError(f"{error}\n{status}\n--- journal ---\n{journal(guest)[-3000:]}") from None


def file_inventory(guest: Guest) -> set[str]:
    out = guest.run(["find", "/", "-xdev", "(", "-path", "/proc", "-o", "-path", "/sys", "-o", "-path", "/dev",
                     "-o", "-path", "/run", "-o", "-path", "/mnt", ")", "-prune", "-o", "-print"], timeout=120).stdout
    return {path for path in out.splitlines() if not path.startswith(VOLATILE_PREFIXES)}


# -- the scenarios, in order -------------------------------------------------------------------------

state: dict[str, object] = {}


def test_install_enables_and_starts_the_service(guest: Guest, deb: Path):
    state["before_install"] = file_inventory(guest)
    installed = guest.run(["dpkg", "-i", f"{GUEST_DEB_DIR}/{deb.name}"], check=False, timeout=120)
    assert installed.returncode == 0, f"dpkg -i failed:\n{installed.stdout}{installed.stderr}"

    for path in ("/usr/bin/kflow-master", "/usr/libexec/kflow/kflow-worker", "/etc/kflow/kflow.properties",
                 "/lib/systemd/system/kflow.service", "/usr/lib/sysctl.d/60-kflow.conf"):
        assert guest.run(["test", "-e", path], check=False).returncode == 0, f"{path} is not installed"
    conffiles = guest.run(["dpkg-query", "-W", "-f=${Conffiles}", "kflow"]).stdout
    assert "/etc/kflow/kflow.properties" in conffiles, f"not a conffile: {conffiles!r}"
    assert guest.run(["systemctl", "is-enabled", UNIT], check=False).stdout.strip() == "enabled"
    # The package's own start (deb-systemd-invoke) must have brought it up.
    wait_active(guest)


def test_the_configuration_is_readable_by_the_service_alone(guest: Guest):
    # It may hold Kafka passwords: root and the service's group, nobody else.
    mode = guest.run(["stat", "-c", "%a %U %G", "/etc/kflow/kflow.properties"]).stdout.split()
    assert mode == ["640", "root", "kflow-config"], f"/etc/kflow/kflow.properties is {mode}"
    # ... and the service reads it: --check-config (ExecStartPre) and the master both fail on an
    # unreadable --config file, so a restart that comes up active proves it; the master runs with the group.
    guest.run(["systemctl", "restart", UNIT], timeout=60)
    wait_active(guest)
    status = guest.run(["cat", f"/proc/{main_pid(guest)}/status"]).stdout
    gid = re.search(r"^Gid:\s+(\d+)", status, re.M)
    config_gid = guest.run(["getent", "group", "kflow-config"]).stdout.split(":")[2]
    assert gid and gid.group(1) == config_gid, f"master's Gid vs kflow-config's {config_gid}:\n{status}"
    assert "cannot read" not in journal(guest)


def test_start_returns_after_ready_with_workers_running(guest: Guest):
    guest.run(["systemctl", "stop", UNIT], timeout=60)
    assert unit_properties(guest, "ActiveState")["ActiveState"] == "inactive"
    started = guest.run(["systemctl", "start", UNIT], check=False, timeout=60)
    assert started.returncode == 0, f"systemctl start failed:\n{started.stderr}\n{journal(guest)[-3000:]}"
    # Type=notify: `systemctl start` returns only once the master said READY=1, so no polling here.
    props = unit_properties(guest, "ActiveState", "SubState", "MainPID", "StatusText", "NRestarts")
    assert (props["ActiveState"], props["SubState"]) == ("active", "running"), props
    master = int(props["MainPID"])
    assert worker_pids(guest, master), f"no kflow-worker child of master {master} right after start"
    user = guest.run(["ps", "-o", "user=", "-p", str(master)]).stdout.strip()
    assert user not in ("root", "0"), f"the master runs as {user}; DynamicUser=yes should make it a transient user"
    state["master"] = master


def test_unit_exposure_is_at_most_2(guest: Guest):
    out = guest.run(["systemd-analyze", "security", "--no-pager", UNIT], check=False).stdout
    match = re.search(r"Overall exposure level for kflow\.service: ([0-9.]+)", out)
    assert match, f"no exposure level in systemd-analyze output:\n{out[-2000:]}"
    assert float(match.group(1)) <= 2.0, f"exposure {match.group(1)} > 2.0:\n{out}"


def test_flows_sent_to_4739_reach_kafka(guest: Guest):
    finish(send_flows(guest, batch=1, count=500))
    assert_all_delivered(guest, 1, 500, "after a plain send")


def test_reload_under_load_keeps_the_main_pid_and_loses_no_flow(guest: Guest):
    master = main_pid(guest)
    old_workers = worker_pids(guest, master)
    since = guest_now(guest)
    sender = send_flows(guest, batch=2, count=24000, rate=4000)  # six seconds of traffic
    time.sleep(2)
    # Sample ActiveState every ~10 ms from inside the guest while the reload runs: the unit must pass through
    # `reloading` (the master's RELOADING=1) and come back to `active` (its READY=1). On Debian 12's systemd
    # (252, no Type=notify-reload) `systemctl reload` may return before READY=1, so its exit alone proves
    # nothing.
    sampler = guest.popen(
        ["sh", "-c", f"for i in $(seq 300); do systemctl show -p ActiveState --value {UNIT}; sleep 0.01; done"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.3)
    reload = guest.run(["systemctl", "reload", UNIT], check=False, timeout=60)
    assert reload.returncode == 0, f"systemctl reload failed: {reload.stderr}"
    samples, _ = sampler.communicate(timeout=60)
    seen = []
    for current in samples.split():
        if not seen or seen[-1] != current:
            seen.append(current)
    assert unit_properties(guest, "ActiveState")["ActiveState"] == "active"
    finish(sender)
    assert "reloading" in seen and seen[seen.index("reloading"):][-1] == "active", \
        f"unit states sampled during the reload: {seen}"
    assert main_pid(guest) == master, "the reload replaced the master process"
    new_workers = wait_for(lambda: [p for p in worker_pids(guest, master) if p not in old_workers], 15,
                           "a new generation of workers")
    assert new_workers
    assert "Reloaded" in journal(guest, since), "systemd logged no 'Reloaded' for the unit"
    assert_all_delivered(guest, 2, 24000, "across a reload under load")


def test_a_killed_worker_is_replaced(guest: Guest):
    master = main_pid(guest)
    victim = wait_for(lambda: worker_pids(guest, master), 10, "a worker")[0]
    guest.run(["kill", "-KILL", str(victim)])
    replacement = wait_for(lambda: [p for p in worker_pids(guest, master) if p != victim], 20,
                           f"a worker replacing {victim}")
    assert replacement and victim not in worker_pids(guest, master)
    assert main_pid(guest) == master and unit_properties(guest, "ActiveState")["ActiveState"] == "active"
    finish(send_flows(guest, batch=3, count=500))
    assert_all_delivered(guest, 3, 500, "after a worker was killed and replaced")


def test_a_master_that_stops_pinging_the_watchdog_is_restarted(guest: Guest):
    guest.run(["mkdir", "-p", "/run/systemd/system/kflow.service.d"])
    guest.run(["sh", "-c", f"printf '[Service]\\nWatchdogSec={TEST_WATCHDOG_SECONDS}s\\n' "
                           "> /run/systemd/system/kflow.service.d/watchdog-test.conf"])
    try:
        guest.run(["systemctl", "daemon-reload"])
        guest.run(["systemctl", "restart", UNIT], timeout=60)
        master = main_pid(guest)
        restarts = int(unit_properties(guest, "NRestarts")["NRestarts"])
        since = guest_now(guest)
        guest.run(["kill", "-STOP", str(master)])  # alive but silent: only the watchdog can notice
        wait_for(lambda: main_pid(guest) not in (0, master) and wait_active(guest, 1), TEST_WATCHDOG_SECONDS + 40,
                 "systemd to restart the frozen master", interval=0.5)
        log = journal(guest, since)
        assert "Watchdog timeout" in log, f"no watchdog timeout in the journal:\n{log[-3000:]}"
        assert int(unit_properties(guest, "NRestarts")["NRestarts"]) == restarts + 1
        finish(send_flows(guest, batch=4, count=500))
        assert_all_delivered(guest, 4, 500, "after the watchdog restart")
    finally:
        guest.run(["rm", "-rf", "/run/systemd/system/kflow.service.d"], check=False)
        guest.run(["systemctl", "daemon-reload"], check=False)


def test_templates_survive_a_restart_of_the_service(guest: Guest):
    # One exporter session (fixed source port), templates and data; then, after a restart, data only.
    session = ["--source-port", "47390", "--domain", "9"]
    finish(send_flows(guest, batch=8, count=400, extra=session))
    assert_all_delivered(guest, 8, 400, "before the restart")
    since = guest_now(guest)
    guest.run(["systemctl", "restart", UNIT], timeout=90)
    wait_active(guest)
    files = guest.run(["ls", "-l", "/var/lib/kflow/"], check=False).stdout
    assert "templates-0.kfts" in files, f"no template state in /var/lib/kflow:\n{files}"
    finish(send_flows(guest, batch=9, count=400, extra=session + ["--no-template"]))
    assert_all_delivered(guest, 9, 400, "data sets sent without templates after a restart")
    log = journal(guest, since)
    assert "read from /var/lib/kflow" in log and "rejected" not in log, log[-3000:]


def test_stop_flushes_what_the_producers_hold(guest: Guest):
    # Hold records in the producers for a minute; only a flush on stop can deliver them in time.
    guest.sh("printf 'kafka.props.linger.ms=60000\\nkafka.props.batch.num.messages=1000000\\n' "
             ">> /etc/kflow/kflow.properties")
    guest.run(["systemctl", "restart", UNIT], timeout=60)
    wait_active(guest)
    finish(send_flows(guest, batch=5, count=2000))
    time.sleep(1)
    held = present(guest, 5)
    assert held < 2000, "all records arrived before the stop: linger.ms did not hold them, so this proves nothing"
    since = guest_now(guest)
    guest.run(["systemctl", "stop", UNIT], timeout=90)
    props = unit_properties(guest, "ActiveState", "Result")
    assert props == {"ActiveState": "inactive", "Result": "success"}, props
    assert "Killing" not in journal(guest, since), "systemd had to SIGKILL something on stop"
    assert_all_delivered(guest, 5, 2000, "after systemctl stop")


def test_an_invalid_configuration_is_refused_without_a_restart_loop(guest: Guest):
    guest.sh(": > /etc/kflow/kflow.properties")  # back to the defaults
    guest.run(["systemctl", "start", UNIT], timeout=60)
    master = main_pid(guest)
    workers = worker_pids(guest, master)
    guest.sh("echo server.port=0 >> /etc/kflow/kflow.properties")
    since = guest_now(guest)
    guest.run(["systemctl", "reload", UNIT], timeout=60)
    wait_for(lambda: "reload rejected" in journal(guest, since), 10, "the master to reject the reload")
    assert unit_properties(guest, "ActiveState")["ActiveState"] == "active"
    assert main_pid(guest) == master and worker_pids(guest, master) == workers, \
        "a rejected reload replaced the master or its workers"

    restarted = guest.run(["systemctl", "restart", UNIT], check=False, timeout=60)
    assert restarted.returncode != 0, "systemctl restart succeeded with server.port=0"
    wait_for(lambda: unit_properties(guest, "ActiveState")["ActiveState"] == "failed", 60,
             "systemd to give up on the invalid configuration", interval=0.5)
    restarts = unit_properties(guest, "NRestarts")["NRestarts"]
    time.sleep(4)  # longer than RestartSec: a restart loop would show here
    props = unit_properties(guest, "ActiveState", "NRestarts", "Result")
    assert props["ActiveState"] == "failed" and props["NRestarts"] == restarts, props
    log = journal(guest, since)
    assert "server.port" in log, f"the journal does not say what is wrong:\n{log[-3000:]}"

    guest.sh(": > /etc/kflow/kflow.properties")
    guest.run(["systemctl", "reset-failed", UNIT])
    guest.run(["systemctl", "start", UNIT], timeout=60)


def test_purge_leaves_no_file_user_or_unit_behind(guest: Guest):
    purged = guest.run(["dpkg", "--purge", "kflow"], check=False, timeout=120)
    assert purged.returncode == 0, f"dpkg --purge failed:\n{purged.stdout}{purged.stderr}"
    guest.run(["systemctl", "daemon-reload"])
    load_state = unit_properties(guest, "LoadState")["LoadState"]
    assert load_state == "not-found", f"{UNIT} is still known to systemd: LoadState={load_state}"
    assert guest.run(["getent", "passwd", "kflow"], check=False).stdout == ""
    assert guest.run(["getent", "group", "kflow-config"], check=False).stdout == ""
    left = file_inventory(guest) - state["before_install"]
    assert not left, f"files left after purge: {sorted(left)}"
