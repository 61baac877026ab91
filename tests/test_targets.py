"""Target TOML files are validated on load (each kind's own schema: tests/test_target_kinds.py)."""

from __future__ import annotations

import pytest

from edgec.errors import EdgecError
from edgec.target import all_targets, get_target, parse_target


def test_the_four_cortex_m_targets_load():
    targets = all_targets()
    assert {"cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33"} <= set(targets)
    assert get_target("cortex-m3").qemu.machine == "mps2-an385"
    assert get_target("cortex-m4").core.dsp and not get_target("cortex-m3").core.dsp
    assert get_target("cortex-m33").qemu.ram_origin == 0x38000000


def test_an_unknown_target_lists_the_known_ones():
    with pytest.raises(EdgecError) as raised:
        get_target("cortex-m99")
    assert "cortex-m99" in raised.value.one_line() and "cortex-m3" in raised.value.one_line()


def _valid_text() -> str:
    from importlib import resources

    return (resources.files("edgec.targets") / "cortex-m3.toml").read_text()


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("clock_hz = 120_000_000", "clock_hz = -1"), "positive"),
    (lambda t: t.replace('machine = "mps2-an385"\n', ""), "qemu.machine"),
    (lambda t: t.replace('kind = "cortex-m"', 'kind = "gpu"'), "unknown kind"),
    (lambda t: t.replace("features = []", 'features = "dsp"'), "core.features must be a list of strings"),
    (lambda t: t + "[[[", "not valid TOML"),
])
def test_malformed_target_files_are_rejected(edit, message):
    with pytest.raises(EdgecError, match=message):
        parse_target(edit(_valid_text()), "broken.toml")
