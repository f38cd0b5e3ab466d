#!/usr/bin/env bash
# A real, single-node SLURM cluster on this machine, for testing the SLURM
# profile (profiles/slurm) without a site cluster.
#
#   sudo bash tests/cluster/start_slurm.sh     # install if needed, configure, start
#   sudo bash tests/cluster/stop_slurm.sh      # stop the daemons again
#
# Debian/Ubuntu only (apt-get); run as root. Safe to rerun: daemons already up
# with the same configuration are left alone, a changed configuration restarts
# them. Ends when `sinfo` reports the node idle, or fails after SLURM_WAIT_S.
#
# There is no accounting database (accounting_storage/none), so `sacct` cannot
# answer: Snakemake must be told `--slurm-status-command squeue`, and squeue
# only remembers finished jobs for MinJobAge seconds, which therefore has to be
# well above the plugin's status-check interval.
set -euo pipefail

PARTITION="${SLURM_PARTITION:-debug}"
WAIT_S="${SLURM_WAIT_S:-60}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
STATE_DIR=/var/lib/slurm
LOG_DIR=/var/log/slurm

log() { echo "start_slurm: $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bash $0): it installs packages and starts daemons"

# ---- packages ---------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and apt-get is not available"
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# ---- munge --------------------------------------------------------------------
# The key is normally made by the package; make one if a minimal image lacks it.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating a munge key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    # munged refuses to run as root; it daemonizes itself.
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# ---- slurm.conf ---------------------------------------------------------------
HOST="$(hostname -s)"
# What slurmd detects on this machine: CPUs, sockets, cores, RealMemory (MB).
NODE_LINE="$(slurmd -C | head -n 1)"
case "$NODE_LINE" in NodeName=*) ;; *) die "unexpected 'slurmd -C' output: $NODE_LINE" ;; esac
REAL_MEMORY="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")"
if [ "${REAL_MEMORY:-0}" -lt 8000 ]; then
    log "warning: this node has ${REAL_MEMORY} MB; rules that declare mem_mb above that will be rejected by sbatch"
fi

install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$STATE_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"

NEW_CONF="$(mktemp)"
trap 'rm -f "$NEW_CONF"' EXIT
cat >"$NEW_CONF" <<EOF
# Written by tests/cluster/start_slurm.sh: a single-node test cluster.
ClusterName=compfair
# Loopback addresses, so that nothing depends on the host name resolving.
SlurmctldHost=$HOST(127.0.0.1)
# The daemons run as root: a throwaway test cluster, no state to protect.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
# No cgroups in containers and CI runners: track processes through /proc,
# bind nothing. Memory is scheduled (CR_Core_Memory) but not enforced.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue (the only status source without accounting) forgets a finished job
# after MinJobAge seconds. The Snakemake plugin needs it >= 3x its check
# interval; an hour also lets tests look up every job of a run afterwards.
MinJobAge=3600
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldTimeout=30
SlurmdTimeout=60
$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ -f "$CONF" ] && cmp -s "$NEW_CONF" "$CONF"; then
    changed=0
else
    changed=1
    [ -f "$CONF" ] && log "slurm.conf changed; daemons will restart"
    install -m 0644 "$NEW_CONF" "$CONF"
fi

if [ "$changed" -eq 1 ]; then
    for name in slurmd slurmctld; do
        if running "/run/$name.pid"; then
            log "stopping $name"
            kill "$(cat "/run/$name.pid")"
            for _ in $(seq 1 20); do running "/run/$name.pid" || break; sleep 0.5; done
        fi
    done
fi

# ---- daemons ------------------------------------------------------------------
if ! running /run/slurmctld.pid; then
    log "starting slurmctld"
    # -c: start from a clean state (no jobs or node states left from earlier runs).
    /usr/sbin/slurmctld -c
fi
if ! running /run/slurmd.pid; then
    log "starting slurmd"
    /usr/sbin/slurmd
fi

# ---- wait for the node ----------------------------------------------------------
deadline=$((SECONDS + WAIT_S))
state=""
while [ "$SECONDS" -lt "$deadline" ]; do
    state="$(sinfo --noheader --nodes="$HOST" --format=%T 2>/dev/null | head -n 1 || true)"
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|fail*)
            # A node left down by an earlier, different configuration.
            scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 1
done
case "$state" in
    idle|mixed|allocated) ;;
    *) die "node $HOST is '${state:-not reported}' after ${WAIT_S}s; see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log" ;;
esac

log "ready: partition '$PARTITION', node $HOST ($state)"
sinfo --Node --long
