"""kflow-master's command line and configuration layers, through the real binary: --check-config exit
codes and messages, --print-config sources, and precedence defaults < file < environment < command line.
No broker or workers are needed: every run here exits before starting any."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support.procs import kflow_bin_dir

CONFIG_ERROR = 78  # sysexits EX_CONFIG
USAGE_ERROR = 64  # ArgumentParser's validation failure


def run_master(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """kflow-master with only the environment a test gives (no stray KFLOW_* from the caller)."""
    master = kflow_bin_dir() / "kflow-master"
    if not master.exists():
        pytest.fail(f"{master} does not exist (build it, or set KFLOW_BIN)")
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})}
    return subprocess.run([str(master), *args], env=clean, capture_output=True, text=True, timeout=30)


def effective(result: subprocess.CompletedProcess) -> dict[str, tuple[str, str]]:
    """--print-config output as {key: (value, source)}: each `key=value` line follows `# from SOURCE`."""
    assert result.returncode == 0, result.stderr
    entries: dict[str, tuple[str, str]] = {}
    source = None
    for line in result.stdout.splitlines():
        if line.startswith("# from "):
            source = line[len("# from "):]
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert source is not None, f"no source line before {line!r}"
            entries[key] = (value, source)
            source = None
    return entries


@pytest.fixture
def properties(tmp_path):
    def write(text: str, name: str = "kflow.properties") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def test_check_config_accepts_a_valid_kflow_style_file(properties):
    path = properties(
        "# KFlow's own syntax\n"
        "server.port = 2055\n"
        "server.threads: 2\n"
        "kafka.topic flows\n"
        "kafka.props.bootstrap.servers=broker1:9092,\\\n"
        "    broker2:9092\n"
        "kafka.props.acks=all\n"
    )
    result = run_master("--check-config", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "configuration OK"
    assert result.stdout == ""


def test_check_config_reports_every_problem_with_key_value_and_source(properties):
    path = properties("kafka.topic=ipfix\n\nserver.port=abc\nserver.prot=4739\nkafka.props.no.such=1\n")
    result = run_master(
        "--check-config", "--config", str(path), "--metrics-port", "http", "-Dapp.log.level=loud",
        env={"KFLOW_SERVER_THREADS": "-2"},
    )
    assert result.returncode == CONFIG_ERROR
    lines = result.stderr.strip().splitlines()
    expected = [
        f"server.prot: is not a kflow setting (from {path} line 4)",
        f"server.port: 'abc' is not a port number (1-65535) (from {path} line 3)",
        "server.threads: '-2' is not a whole number from 0 to 1024 (from environment KFLOW_SERVER_THREADS)",
        "metrics.port: 'http' is not a port number (1-65535, or 0 to disable metrics) (from command line --metrics-port)",
        "log.level: 'loud' is not one of debug, info, notice, warning, error (from command line -Dapp.log.level)",
    ]
    for message in expected:
        assert message in lines, f"missing {message!r} in:\n{result.stderr}"
    assert any(line.startswith(f"kafka.props.no.such: '1' is refused by librdkafka") for line in lines), result.stderr
    assert "configuration OK" not in result.stderr


def test_named_config_file_that_is_missing_is_an_error(tmp_path):
    missing = tmp_path / "absent.properties"
    result = run_master("--check-config", "-c", str(missing))
    assert result.returncode == CONFIG_ERROR
    assert f"cannot read {missing}: No such file or directory (from command line --config)" in result.stderr

    result = run_master("--check-config", env={"KFLOW_CONFIG": str(missing)})
    assert result.returncode == CONFIG_ERROR
    assert "(from environment KFLOW_CONFIG)" in result.stderr


def test_kflow_config_variable_names_the_file(properties):
    path = properties("server.port=2056\n")
    entries = effective(run_master("--print-config", env={"KFLOW_CONFIG": str(path)}))
    assert entries["server.port"] == ("2056", f"{path} line 1")


def test_print_config_lists_every_key_with_its_source(properties):
    path = properties("kafka.topic=flows\nkafka.props.acks=all\n")
    entries = effective(run_master(
        "--print-config", "-c", str(path), "--metrics-port", "9100", "-Dapp.kafka.props.client.id=edge-1",
        env={"KFLOW_TEMPLATES_LIFETIME": "600"},
    ))
    assert entries["kafka.topic"] == ("flows", f"{path} line 1")
    assert entries["kafka.props.acks"] == ("all", f"{path} line 2")
    assert entries["templates.lifetime"] == ("600", "environment KFLOW_TEMPLATES_LIFETIME")
    assert entries["metrics.port"] == ("9100", "command line --metrics-port")
    assert entries["kafka.props.client.id"] == ("edge-1", "command line -Dapp.kafka.props.client.id")
    assert entries["server.port"] == ("4739", "built-in default")
    assert entries["kafka.props.bootstrap.servers"] == ("localhost:9092", "built-in default")
    for key in ("server.host", "server.threads", "server.buffer.size", "server.batch.size", "kafka.producers",
                "kafka.flush.timeout.ms", "output.fields", "output.batch.records", "templates.max.per.session",
                "templates.max.total", "exporters.max", "metrics.host", "worker.heartbeat.timeout.ms",
                "worker.stop.timeout.ms", "log.level"):
        assert key in entries, f"{key} missing from --print-config"


def test_print_config_masks_secrets(properties):
    path = properties("kafka.props.sasl.password=file-secret\n")
    result = run_master(
        "--print-config", "-c", str(path), "-Dapp.kafka.props.ssl.keystore.password=cli-secret",
        env={"KFLOW_KAFKA_PROPS_SSL_KEY_PASSWORD": "env-secret"},
    )
    entries = effective(result)
    assert entries["kafka.props.sasl.password"] == ("********", f"{path} line 1")
    assert entries["kafka.props.ssl.key.password"][0] == "********"
    assert entries["kafka.props.ssl.keystore.password"][0] == "********"
    for secret in ("file-secret", "env-secret", "cli-secret"):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("layers, value, source", [
    (("file",), "1001", "FILE line 2"),
    (("file", "env"), "1002", "environment KFLOW_SERVER_PORT"),
    (("file", "env", "define"), "1003", "command line -Dapp.server.port"),
    (("file", "env", "define", "option"), "1004", "command line --server-port"),
    (("env", "option"), "1004", "command line --server-port"),
])
def test_higher_layer_wins_for_the_same_key(properties, layers, value, source):
    path = properties("# precedence\nserver.port=1001\n")
    args, env = ["--print-config"], {}
    if "file" in layers:
        args += ["-c", str(path)]
    if "env" in layers:
        env["KFLOW_SERVER_PORT"] = "1002"
    if "define" in layers:
        args.append("-Dapp.server.port=1003")
    if "option" in layers:
        args += ["--server-port", "1004"]
    entries = effective(run_master(*args, env=env))
    assert entries["server.port"] == (value, source.replace("FILE", str(path)))


def test_environment_variable_naming_no_setting_is_only_a_notice():
    result = run_master("--check-config", "-c", "/dev/null", env={"KFLOW_SERVER_PROT": "1"})
    assert result.returncode == 0, result.stderr
    assert "notice: environment variable KFLOW_SERVER_PROT names no kflow setting; ignored" in result.stderr


def test_malformed_define_is_a_configuration_error():
    result = run_master("--check-config", "-c", "/dev/null", "-Dserver.port=1", "-Dapp.kafka.topic=a b")
    assert result.returncode == CONFIG_ERROR
    assert "'-Dserver.port=1' is not of the form -Dapp.KEY=VALUE" in result.stderr
    assert "kafka.topic: 'a b' is not a Kafka topic name" in result.stderr


def test_unknown_option_is_a_usage_error():
    result = run_master("--check-config", "--server-prot", "1")
    assert result.returncode == USAGE_ERROR
    assert "--server-prot" in result.stderr


def test_reference_prints_loadable_defaults(properties):
    result = run_master("--print-reference")
    assert result.returncode == 0
    path = properties(result.stdout, "reference.properties")
    assert run_master("--check-config", "-c", str(path)).returncode == 0
    from_reference = effective(run_master("--print-config", "-c", str(path)))
    defaults = effective(run_master("--print-config", "-c", "/dev/null"))
    assert {k: v for k, (v, _) in from_reference.items()} == {k: v for k, (v, _) in defaults.items()}


def test_version_names_kflow_and_librdkafka():
    result = run_master("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("kflow ") and "librdkafka" in result.stdout
