"""Unit strings (controlplane/config/units.py): exact conversion to the data plane's integers."""
import pytest

from controlplane.config.units import format_quantity, parse_quantity, unit_kind


@pytest.mark.parametrize("text, kind, expected", [
    # decimal prefixes are powers of 1000, binary ones of 1024 (IEC 80000-13); 1 s = 10**12 ps
    ("100G", "rate", 100 * 10**9), ("100Gbps", "rate", 100 * 10**9), ("25Mbps", "rate", 25 * 10**6),
    ("400gb/s", "rate", 400 * 10**9), ("1.6T", "rate", 1_600 * 10**9), ("1000", "rate", 1000),
    ("16MB", "size", 16 * 10**6), ("16MiB", "size", 16 * 2**20), ("4KiB", "size", 4096), ("1.5KB", "size", 1500),
    ("4096", "size", 4096), ("1e6", "size", 10**6), ("1_000", "size", 1000), ("0", "size", 0),
    ("500ns", "time", 500 * 10**3), ("1us", "time", 10**6), ("1\u00b5s", "time", 10**6), ("2ms", "time", 2 * 10**9),
    ("1.5us", "time", 1_500_000), ("0.001ns", "time", 1), ("1s", "time", 10**12), ("-5ns", "time", -5000),
])
def test_parse_quantity_is_exact(text, kind, expected):
    v = parse_quantity(text, kind)
    assert v == expected and type(v) is int


@pytest.mark.parametrize("text, kind, words", [
    ("1.5ps", "time", "not a whole number of ps"), ("0.0001ns", "time", "not a whole number of ps"),
    ("0.5", "size", "not a whole number of bytes"), ("1.5bps", "rate", "not a whole number of bit/s"),
    ("nan", "time", "finite"), ("inf", "rate", "finite"), ("-inf", "size", "finite"),
    ("16Mx", "size", "unknown size unit 'Mx'"), ("100Gbit", "rate", "unknown rate unit 'Gbit'"),
    ("lots", "size", "expected a size such as 16MB"), ("", "size", "expected a size"), ("G", "rate", "expected a rate"),
    ("1.2.3us", "time", "expected a time"),
    # a huge exponent overflowed the decimal context (decimal.Overflow, a traceback from the CLI)
    ("1e999999999G", "rate", "out of range"), ("1e31", "size", "out of range"), ("1e-31s", "time", "out of range"),
])
def test_parse_quantity_refuses_what_does_not_convert_exactly(text, kind, words):
    with pytest.raises(ValueError, match=words):
        parse_quantity(text, kind)


@pytest.mark.parametrize("value, kind, text", [
    (100 * 10**9, "rate", "100Gbps"), (16 * 10**6, "size", "16MB"), (16 * 2**20, "size", "16MiB"),
    (4096, "size", "4KiB"), (10**6, "time", "1us"), (1234, "time", "1234ps"), (0, "size", "0"),
])
def test_format_quantity_round_trips(value, kind, text):
    assert format_quantity(value, kind) == text
    assert parse_quantity(text, kind) == value


def test_unit_kind_by_suffix():
    assert [unit_kind(n) for n in ("rate_bps", "size_bytes", "delay_ps", "senders", "rate_gbps")] == \
        ["rate", "size", "time", None, None]
