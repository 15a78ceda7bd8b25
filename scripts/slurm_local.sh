#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the SLURM tests and for trying the SLURM path
# without a cluster: munged + slurmctld + slurmd, all state under $SLURM_LOCAL_DIR
# (default /tmp/bnlab-slurm), each daemon stopped by its pid file.
#
#   scripts/slurm_local.sh install   Debian's slurmctld slurmd slurm-client munge (as root)
#   scripts/slurm_local.sh start     start the cluster; prints `export SLURM_CONF=...`
#   scripts/slurm_local.sh stop      stop it (by pid)
#   scripts/slurm_local.sh status    sinfo
#
# Clients (sbatch, squeue, scancel, and so the submitit launcher) find the cluster through
# SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf. Needs root: slurmd runs jobs as their user.
set -euo pipefail
DIR=${SLURM_LOCAL_DIR:-/tmp/bnlab-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

say() { echo "slurm_local: $*" >&2; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
      && command -v sbatch >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "cannot install SLURM here (needs root and apt-get)"; return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  local packages="slurmctld slurmd slurm-client munge"
  apt-get install -y -qq $packages >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq $packages >/dev/null; }
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  install
  if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid"; then
    say "already running"; echo "export SLURM_CONF=$CONF"; return 0
  fi
  stop >/dev/null 2>&1 || true
  mkdir -p "$DIR"/{state,spool,log,munge}
  local host cpus mem
  host=$(hostname)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  # munge: a 1 KiB random key owned by munge, mode 400; its own socket
  dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chown -R munge:munge "$DIR/munge" 2>/dev/null || true
  chmod 700 "$DIR/munge"; chmod 400 "$DIR/munge/munge.key"
  munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
  cat > "$CONF" <<CONF
ClusterName=bnlab
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld -f "$CONF"
  slurmd -f "$CONF"
  for _ in $(seq 1 60); do
    if sinfo -h -o %t 2>/dev/null | grep -q idle; then
      say "up: $(sinfo -h -o '%P %D %t %c CPUs')"; echo "export SLURM_CONF=$CONF"; return 0
    fi
    sleep 0.5
  done
  say "the node did not become idle; logs in $DIR/log"; sinfo >&2 || true; return 1
}

stop() {
  local pidfile pid
  for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munge/munged.pid"; do
    pid=$(cat "$pidfile" 2>/dev/null || true)  # read once: a daemon removes its own on exit
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  say "stopped"
}

case "${1:-status}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) say "usage: $0 install|start|stop|status"; exit 2 ;;
esac
