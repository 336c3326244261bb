"""Any field by configuration (output.field.NAME=[PEN/]IE[:type]): real exporters' packets from the shared
corpus, replayed over UDP through kflow; each chosen field of each record must equal what tshark decodes
from the same packets (VMware PEN 6876, Cisco AVC PEN 9 and IANA applicationId/MAC, RFC 5103 reverse
counters PEN 29305)."""

from __future__ import annotations

import pytest

from support import corpus
from test_config import run_master
from test_corpus_replay import match
from test_sampling import replay

pytestmark = pytest.mark.skipif(corpus.corpus_dir() is None, reason="shared corpus not found")


def hex_of(tshark: str) -> str:
    """tshark's "aa:bb:cc" octets as kflow's hex text."""
    return tshark.replace(":", "").lower()


def fields_of(record: dict) -> list[tuple[str, str, str]]:
    return [(field[0], field[1], field[2] if len(field) > 2 else "") for field in record["fields"]]


def first(fields: list[tuple[str, str, str]], name: str, flags: str = "") -> str | None:
    return next((value for field, value, flag in fields if field == name and flag == flags), None)


def vmware(fields):
    # tshark names PEN 6876 IEs 890, 888, 889 (the template's order) "enterprise_private_entry".
    entries = [value for field, value, _ in fields if field == "enterprise_private_entry"]
    return {"vmw_890": int(hex_of(entries[0]), 16), "vmw_888": hex_of(entries[1]), "vmw_889": int(hex_of(entries[2]), 16)}


def cisco_avc(fields):
    engine = int(first(fields, "appl_id.classification_engine_id"))
    host_app = first(fields, "pie.cisco.application_http_host_app_id")
    host_sub = first(fields, "pie.cisco.application_http_host_sub_app_id")
    host = first(fields, "pie.cisco.application_http_host")
    return {
        "app_id": f"{engine:02x}" + hex_of(first(fields, "appl_id.selector_id")),
        "src_mac": first(fields, "srcmac"),
        "dst_mac": first(fields, "dstmac"),
        # PEN 9 IE 12235 (variable-length, first of four in the template): app ID, sub-app ID and the
        # text tshark shows, as hex (kflow keeps the first 256 octets).
        "http_host": (hex_of(host_app) + hex_of(host_sub) + host.encode().hex())[:2 * 256],
    }


def reverse_counters(fields):
    return {"rev_bytes": int(first(fields, "octets", "R")), "rev_pkts": int(first(fields, "packets", "R"))}


CASES = [
    ("ls_ipfix_vmware_vds", {"output.field.vmw_890": "6876/890", "output.field.vmw_888": "6876/888:hex",
                             "output.field.vmw_889": "6876/889:unsigned"}, vmware),
    ("ic_ipfix_cisco_avc_odid256_512", {"output.field.app_id": "95", "output.field.src_mac": "56",
                                        "output.field.dst_mac": "80", "output.field.http_host": "9/12235"}, cisco_avc),
    # Reverse counters as fields of the one forward record: biflows not split (with split, the reverse
    # direction is a flow of its own, test_biflows_and_times.py).
    ("ak_ipfix_ipfixprobe", {"output.field.rev_bytes": "29305/1", "output.field.rev_pkts": "29305/2",
                             "output.biflow": "forward"}, reverse_counters),
]


@pytest.mark.parametrize("name,settings,expected_of", [pytest.param(*case, id=case[0]) for case in CASES])
def test_chosen_fields_equal_what_tshark_decodes(kflow_factory, broker, topic, records, name, settings, expected_of):
    sequence = corpus.load(name)
    kflow = kflow_factory(broker.bootstrap, topic, **{key.replace(".", "__"): value for key, value in settings.items()})
    dvc_by_packet = replay(sequence, kflow.port)

    options_ids = sequence.options_template_ids()
    truth_records = [record for packet in sequence.truth["packets"] for record in packet["records"]
                     if record["set_id"] not in options_ids]
    rows = sequence.flow_rows()
    assert len(truth_records) == len(rows)
    expected = []
    for row, truth in zip(rows, truth_records):
        low, high = corpus.expected_time_ms(sequence, int(row["pkt"]))
        record = corpus.expected_record(sequence, row, dvc_by_packet[int(row["pkt"])])
        record.update(sorted(expected_of(fields_of(truth)).items()))  # kflow writes them by name
        expected.append((record, low, high))

    got = records(len(expected), timeout=15, settle=1.5)
    names = sorted(key.removeprefix("output.field.") for key in settings if key.startswith("output.field."))
    for record in got:
        assert list(record)[-len(names):] == names, record  # after the other fields, by name
    missing, unexpected = match(expected, got)
    assert (len(got), missing[:2], unexpected[:2]) == (len(expected), [], []), f"received instead: {unexpected[:2]}"


def test_check_config_names_a_bad_custom_field():
    result = run_master("--check-config", "-Dapp.output.field.app=9/abc", "-Dapp.output.field.src=8")
    assert result.returncode != 0
    assert "output.field.app: '9/abc' has IE 'abc', not a number from 1 to 32767" in result.stderr
    assert "output.field.src: '8' names the field 'src', one of KFlow's own keys" in result.stderr
