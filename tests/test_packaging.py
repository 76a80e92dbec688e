"""The package's dependency floors: ``scripts/lowest.txt`` pins the lowest release of each, which the
suite is run against (README, "Installing into your own environment")."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _floors() -> dict[str, str]:
    """``name -> floor`` of pyproject.toml's ``dependencies`` (each written ``name>=floor``)."""
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    found = re.findall(r'^\s*"([A-Za-z0-9_.-]+)>=([0-9.]+)"', block, re.M)
    assert len(found) == block.count('"') // 2, f"a dependency without a >= floor in {block!r}"
    return {name.lower(): floor for name, floor in found}


def _pins() -> dict[str, str]:
    lines = (ROOT / "scripts" / "lowest.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip().lower(): version.strip() for name, version in pins}


def test_lowest_pins_each_dependency_at_its_floor():
    floors, pins = _floors(), _pins()
    assert sorted(pins) == sorted(floors)
    for name, floor in floors.items():
        # the floor's own release, or a patch release of it (a floor "1.24" is met by "1.24.4")
        assert (pins[name] + ".").startswith(floor + "."), (name, floor, pins[name])
