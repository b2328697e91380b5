#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the tests and CI: `start`, `stop` or `status`.
#
#   sudo scripts/slurm_cluster.sh start   # installs slurm-wlm and munge where missing; partition `debug`
#   sudo scripts/slurm_cluster.sh stop    # stops what `start` started and removes its files
#
# munged, slurmctld and slurmd run as root-started daemons with their state under $SLURM_CLUSTER_DIR
# (default /tmp/linreg-slurm); the config goes to /etc/slurm/slurm.conf, where every SLURM command looks
# for it. A slurm.conf this script did not write is never touched: the machine is then someone's cluster.
# Accounting is off (no slurmdbd), so `sacct` fails: submitit then reads job states from its own files.
set -euo pipefail

STATE=${SLURM_CLUSTER_DIR:-/tmp/linreg-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by linreg scripts/slurm_cluster.sh"
PARTITION=debug

say() { echo "slurm_cluster: $*" >&2; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        say "needs root (it starts munged, slurmctld and slurmd); run it with sudo"
        exit 77  # the tests read 77 as "this machine cannot run the cluster"
    fi
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
        && command -v srun >/dev/null; then
        return
    fi
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq slurm-wlm munge >/dev/null
}

running() {
    scontrol ping 2>/dev/null | grep -q "is UP" && sinfo -h -o %T 2>/dev/null | grep -qE "^(idle|mixed|allocated)"
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # the machine's own munged is up: use it
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key && chmod 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$STATE/started-munged"
}

write_conf() {
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        say "$CONF exists and was not written by this script; not touching this machine's cluster"
        exit 1
    fi
    local host cpus memory
    host=$(hostname)
    cpus=$(nproc)
    memory=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) * 9 / 10 / 1024))  # MB, below what slurmd detects
    mkdir -p /etc/slurm "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log"
    cat >"$CONF" <<EOF
$MARK
ClusterName=linreg
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    need_root
    install_packages
    if running; then
        say "already running (partition $PARTITION)"
        return
    fi
    mkdir -p "$STATE"
    start_munge
    write_conf
    /usr/sbin/slurmctld -i  # -i: ignore state left by an earlier cluster in $STATE
    /usr/sbin/slurmd
    for _ in $(seq 1 120); do
        if running; then
            say "up: node $(hostname), $(nproc) CPUs, partition $PARTITION"
            return
        fi
        sleep 0.5
    done
    say "did not come up within 60 s; logs in $STATE/log"
    tail -n 20 "$STATE"/log/*.log >&2 || true
    exit 1
}

stop_pid() {  # the daemon whose pid file is $1, and wait until it is gone
    local pid
    [ -s "$1" ] || return 0
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    need_root
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        say "$CONF was not written by this script; nothing to stop"
        return
    fi
    scancel --full --quiet "--partition=$PARTITION" 2>/dev/null || true
    stop_pid "$STATE/slurmd.pid"
    stop_pid "$STATE/slurmctld.pid"
    if [ -e "$STATE/started-munged" ]; then
        stop_pid /run/munge/munged.pid
    fi
    rm -f "$CONF"
    rm -rf "$STATE"
    say "stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) if running; then sinfo; else say "not running"; exit 1; fi ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
