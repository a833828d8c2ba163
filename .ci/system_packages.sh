#!/usr/bin/env bash
# Debian packages the test suite needs beyond Python: a real Slurm (slurmctld, slurmd, sbatch...)
# and munge, its authentication daemon, for tests/slurm_cluster.py's one-node cluster on localhost.
# Idempotent: does nothing when the tools are already on PATH, so CI and `make test` can call it
# every time. Needs root (CI and the dev machines run as root).
set -euo pipefail

missing=0
for tool in slurmctld slurmd munged sbatch; do
    # Daemons live in /usr/sbin, which a non-login root shell may lack on PATH.
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1; then
        missing=1
    fi
done
if [ "$missing" = 0 ]; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends slurm-wlm munge
