#!/usr/bin/env bash
# Sets up a virtual environment with distmatch installed in editable mode.
#
#   bash scripts/setup.sh          # the library and the `distmatch` command
#   bash scripts/setup.sh --test   # plus pytest, ruff, the reference libraries (POT, GeomLoss) and Triton
#
# torch is installed first and pinned, so that no later requirement pulls another build.
# Override with TORCH_SPEC (e.g. "torch==2.13.0") and PIP_EXTRA_ARGS (e.g. an --index-url).
# The environment lives in $DISTMATCH_VENV (default: .venv beside this folder). Re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DISTMATCH_VENV:-.venv}
torch_spec=${TORCH_SPEC:-torch==2.13.0}
extra=""
case "${1:-}" in
  --test) extra="[test]" ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [--test]; got '$1'" >&2; exit 2 ;;
esac
pip_install() { "$venv/bin/python" -m pip install -q --disable-pip-version-check ${PIP_EXTRA_ARGS:-} "$@"; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import torch" 2>/dev/null || pip_install "$torch_spec"
pip_install -e ".$extra"
