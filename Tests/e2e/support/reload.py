"""SIGHUP reloads driven from a test: rewrite kflow's properties file, signal, wait for the new generation."""

from __future__ import annotations

import signal

from .procs import tail, wait_until


def reload_with(kflow, **changes) -> None:
    """Rewrites the properties file with `changes` (`__` for dots; None removes a key) and sends SIGHUP."""
    for key, value in changes.items():
        if value is None:
            kflow.properties.pop(key.replace("__", "."), None)
        else:
            kflow.properties[key.replace("__", ".")] = value
    kflow.config.write_text("".join(f"{k}={v}\n" for k, v in kflow.properties.items()))
    kflow.send_signal(signal.SIGHUP)


def wait_reload_applied(kflow, successes: int, timeout: float = 20.0) -> None:
    """Until `successes` reloads have completed and exactly the configured number of workers run;
    AssertionError with the master's view and log otherwise."""
    def applied():
        m = kflow.metrics()
        return (m.get("kflow_reloads_total", result="success") == successes
                and len(kflow.worker_pids()) == kflow.threads and m.get("kflow_workers") == kflow.threads)
    try:
        wait_until(applied, timeout, 0.1, f"reload #{successes} applied with {kflow.threads} worker(s)")
    except TimeoutError as error:
        m = kflow.metrics()
        raise AssertionError(
            f"{error}: reloads {m.by_label('kflow_reloads_total', 'result')}, kflow_workers "
            f"{m.get('kflow_workers')}, worker pids {kflow.worker_pids()}\n{tail(kflow.stderr_path, 30)}") from None
