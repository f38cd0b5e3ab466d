#!/usr/bin/env bash
# Stop the single-node test cluster that start_slurm.sh started: slurmd,
# slurmctld and munged, each by the pid it recorded. Safe to rerun; leaves the
# packages and /etc/slurm/slurm.conf in place for the next start.
set -euo pipefail

log() { echo "stop_slurm: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "error: run as root (sudo bash $0)"; exit 1; }

stop() {  # stop NAME PIDFILE
    local name="$1" pidfile="$2" pid
    [ -s "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping $name ($pid)"
        kill "$pid"
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name ignored SIGTERM; killing it"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

# Jobs still queued or running would be lost anyway; cancel them cleanly first.
if command -v scancel >/dev/null && command -v squeue >/dev/null \
    && squeue --noheader >/dev/null 2>&1; then
    squeue --noheader --format=%i | xargs -r scancel 2>/dev/null || true
fi

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid
log "stopped"
