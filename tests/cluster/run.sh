#!/usr/bin/env bash
# Start the single-node SLURM test cluster (if it is not up) and run the SLURM
# tests against it. Needs root, for the packages and the daemons.
#
#   sudo bash tests/cluster/run.sh            # extra arguments go to pytest
#   sudo bash tests/cluster/stop_slurm.sh     # afterwards, to stop the cluster
set -euo pipefail
cd "$(dirname "$0")/../.."

bash tests/cluster/start_slurm.sh
COMPFAIR_SLURM=1 exec .venv/bin/python -m pytest -q -rs tests/cluster "$@"
