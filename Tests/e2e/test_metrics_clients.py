"""The metrics port faces whoever can reach metrics.host: clients that reset mid-response, dribble, or send
endless headers must neither kill the master (and with it the workers) nor keep /metrics from answering."""

from __future__ import annotations

import os
import resource
import select
import socket
import struct
import threading
import time

from support import ipfix
from support.ipfix import Flow
from support.metrics import fetch
from support.procs import wait_until

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: kflow\r\n\r\n"


def connect(port: int, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    return sock


def reset(sock: socket.socket) -> None:
    """close() with SO_LINGER {1, 0}: the peer gets an RST, and its next write EPIPE (or SIGPIPE)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def timed_scrape(port: int, timeout: float = 10.0) -> tuple[float, int]:
    start = time.monotonic()
    try:
        status, _ = fetch(f"http://127.0.0.1:{port}/metrics", timeout=timeout)
    except OSError:
        status = 0
    return time.monotonic() - start, status


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the server closed (FIN or RST) this connection; never blocks."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def connection_results(kflow) -> dict[str, float]:
    return kflow.metrics().by_label("kflow_metrics_http_connections_total", "result")


def test_clients_that_reset_mid_response_leave_master_and_workers_running(kflow_factory, broker, topic):
    # 1,000 source ports of one address: past the default per-address session quota (64).
    kflow = kflow_factory(broker.bootstrap, topic, exporters__max__per__address=2000)
    master, workers = kflow.process.pid, sorted(kflow.worker_pids())
    # A /metrics of some 200 KB (series per exporter source port), more than a small receive window holds.
    template = ipfix.flow_message([Flow("10.0.0.1", "10.0.0.2", 1000, 80, 6, 0, 100, 1)], 1_700_000_000)
    for _ in range(1000):
        kflow.send([template], source=("127.0.0.1", 0))

    def exporter_series() -> int:
        return sum(1 for name, _ in kflow.metrics().samples if name == "kflow_exporter_datagrams_total")

    wait_until(lambda: exporter_series() >= 900, 15, what="900 exporters' series published")
    size = len(fetch(f"http://127.0.0.1:{kflow.metrics_port}/metrics")[1])
    assert size > 100_000, f"/metrics is only {size} bytes"

    for _ in range(50):  # the request, then an RST while the answer is being written
        sock = connect(kflow.metrics_port)
        sock.sendall(REQUEST)
        sock.shutdown(socket.SHUT_WR)
        reset(sock)
    for _ in range(20):  # asks for the large /metrics, reads a little of it, then resets
        sock = connect(kflow.metrics_port, receive_buffer=4096)
        sock.sendall(REQUEST)
        sock.recv(1024)
        reset(sock)

    elapsed, status = timed_scrape(kflow.metrics_port)
    assert kflow.process.poll() is None, f"kflow-master exited with {kflow.process.returncode}"
    assert status == 200, f"/metrics answered {status} after the resetting clients"
    assert (kflow.process.pid, sorted(kflow.worker_pids())) == (master, workers), "master or workers were replaced"
    results = connection_results(kflow)
    assert results.get("aborted", 0) >= 1, f"no reset counted as aborted: {results}"
    print(f"after 70 resetting clients (/metrics {size} bytes): master alive, /metrics in {elapsed * 1000:.0f} ms, results {results}")


def test_slow_clients_neither_block_metrics_nor_stay_connected(kflow):
    port = kflow.metrics_port
    slow = [connect(port) for _ in range(70)]
    connected = time.monotonic()
    stop = threading.Event()

    def dribble():  # one byte per second each, never completing the request within the deadline
        for index in range(len(REQUEST)):
            for sock in slow:
                try:
                    sock.send(REQUEST[index:index + 1])
                except OSError:
                    pass
            if stop.wait(1.0):
                return

    endless_outcome: dict[str, object] = {}

    def endless_header():  # a header that never ends: cut off by the size bound
        sock = connect(port)
        received = b""
        try:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Endless: ")
            while not stop.is_set():
                sock.sendall(b"a" * 512)
                readable, _, _ = select.select([sock], [], [], 0.02)
                if readable:
                    chunk = sock.recv(4096)
                    received += chunk
                    if not chunk:
                        break
        except OSError as error:
            endless_outcome["error"] = repr(error)
        endless_outcome["received"] = received
        endless_outcome["closed_after"] = time.monotonic() - connected
        sock.close()

    threads = [threading.Thread(target=dribble), threading.Thread(target=endless_header)]
    for thread in threads:
        thread.start()
    try:
        times = []
        for _ in range(5):
            elapsed, status = timed_scrape(port)
            assert status == 200, f"/metrics answered {status} while slow clients were connected"
            times.append(elapsed)
            time.sleep(0.4)
        assert max(times) < 1.0, f"/metrics took {max(times):.2f} s with 70 slow clients connected (all: {times})"

        # Each slow client is closed by its 5 s deadline (or evicted earlier by a fresh client).
        wait_until(lambda: all(closed_by_peer(sock) for sock in slow), 8, what="all slow clients closed")
        closed_at = time.monotonic() - connected
        assert closed_at < 7.0, f"slow clients still connected {closed_at:.1f} s after connecting"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for sock in slow:
            sock.close()
    assert endless_outcome["closed_after"] < 5.5, f"endless header client: {endless_outcome}"
    assert kflow.process.poll() is None
    results = connection_results(kflow)
    assert results.get("timeout", 0) + results.get("evicted", 0) >= 70, f"slow clients not counted: {results}"
    assert results.get("too_large", 0) >= 1, f"endless header not counted: {results}"
    print(f"/metrics with 70 slow clients: max {max(times) * 1000:.0f} ms; slow clients closed within "
          f"{closed_at:.1f} s; endless header ended after {endless_outcome['closed_after']:.2f} s; results {results}")


def test_oversized_request_is_answered_431(kflow):
    sock = connect(kflow.metrics_port)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Filler: " + b"a" * 9000 + b"\r\n\r\n")
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), f"answered {answer[:80]!r}"
    assert connection_results(kflow).get("too_large", 0) == 1


def test_out_of_descriptors_pauses_accepting_and_recovers(kflow):
    """accept(2) failing with EMFILE (the master's descriptor limit lowered to what it has open, plus two)
    is counted and retried; once descriptors are available again /metrics answers as before."""
    pid = kflow.process.pid
    original = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    held = []
    try:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{pid}/fd")) + 2, original[1]))
        held = [connect(kflow.metrics_port) for _ in range(6)]  # two accepted, the rest meet EMFILE
        time.sleep(0.5)
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, original)
    for sock in held:
        sock.close()
    elapsed, status = timed_scrape(kflow.metrics_port)
    assert status == 200 and elapsed < 1.0, f"/metrics answered {status} after {elapsed:.2f} s once descriptors were back"
    errors = kflow.metrics().get("kflow_metrics_http_accept_errors_total")
    assert errors and errors >= 1, f"accept errors counted: {errors}"
    assert kflow.process.poll() is None
