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
#
# `start` checks everything it needs before it starts anything, then starts the daemons; if any of them fails
# to come up (or the start is interrupted), it stops every daemon it started and removes the files it wrote:
# a failed start leaves nothing running. Exit codes: 0 up, 77 this machine cannot run it (not root, the
# packages cannot be installed, the host name does not resolve), 1 any other failure, 2 usage.
set -euo pipefail

STATE=${SLURM_CLUSTER_DIR:-/tmp/linreg-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by linreg scripts/slurm_cluster.sh"
PARTITION=debug
CANNOT_RUN=77 # the tests read 77 as "this machine cannot run the cluster"
COMMANDS=(munged munge unmunge slurmctld slurmd srun sinfo scontrol scancel) # from slurm-wlm and munge
TOOLS=(setsid setpriv getent hostname nproc awk) # from the base system (util-linux, libc-bin, coreutils...)

say() { echo "slurm_cluster: $*" >&2; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        say "needs root (it starts munged, slurmctld and slurmd); run it with sudo"
        exit "$CANNOT_RUN"
    fi
}

missing_commands() {
    local name
    for name in "${COMMANDS[@]}"; do
        command -v "$name" >/dev/null || echo "$name"
    done
}

install_packages() {
    local tool
    for tool in "${TOOLS[@]}"; do
        if ! command -v "$tool" >/dev/null; then
            say "needs $tool, which this machine lacks"
            exit "$CANNOT_RUN"
        fi
    done
    [ -z "$(missing_commands)" ] && return
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    if ! command -v apt-get >/dev/null || ! apt-get update -qq >/dev/null \
        || ! apt-get install -y -qq slurm-wlm munge >/dev/null; then
        say "cannot install slurm-wlm and munge with apt-get; missing: $(missing_commands | tr '\n' ' ')"
        exit "$CANNOT_RUN"
    fi
    if [ -n "$(missing_commands)" ]; then
        say "slurm-wlm and munge are installed, but these commands are missing: $(missing_commands | tr '\n' ' ')"
        exit "$CANNOT_RUN"
    fi
}

running() {
    scontrol ping 2>/dev/null | grep -q "is UP" && sinfo -h -o %T 2>/dev/null | grep -qE "^(idle|mixed|allocated)"
}

munge_works() {
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1
}

live() { # is process $1 running? A zombie (exited, not yet reaped by its new parent) is not
    kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

process_named() { # is a process with this exact command name running (as pgrep -x, which may be missing)?
    local dir
    for dir in /proc/[0-9]*; do
        [ "$(cat "$dir/comm" 2>/dev/null)" = "$1" ] && live "${dir#/proc/}" && return 0
    done
    return 1
}

# What `start` needs, checked before it starts anything. Sets HOST, CPUS and MEMORY (MB) for the config.
check_prerequisites() {
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        say "$CONF exists and was not written by this script; not touching this machine's cluster"
        exit 1
    fi
    HOST=$(hostname -s 2>/dev/null || true) # slurmd finds its node by the short host name
    if [ -z "$HOST" ] || ! getent hosts "$HOST" >/dev/null; then
        say "the host name '${HOST}' does not resolve to an address (slurmctld reaches slurmd by it); add it to /etc/hosts"
        exit "$CANNOT_RUN"
    fi
    CPUS=$(nproc)
    MEMORY=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) * 9 / 10 / 1024)) # MB, below what slurmd detects
    if ! munge_works; then
        if ! id munge >/dev/null 2>&1; then
            say "no user 'munge' to run munged as (the munge package creates it)"
            exit "$CANNOT_RUN"
        fi
        if process_named munged; then
            say "a munged is running but does not answer; stop it first (scripts/slurm_cluster.sh stop, if it started it)"
            exit 1
        fi
    fi
    local daemon
    for daemon in slurmctld slurmd; do
        if process_named "$daemon"; then
            say "a $daemon is running but the cluster is not up; stop it first (scripts/slurm_cluster.sh stop)"
            exit 1
        fi
    done
}

# The pids of the daemons this start started, and whether it wrote the config: what `cleanup` undoes.
STARTED=()
WROTE_CONF=

# On a failed or interrupted start (the EXIT trap): the daemons it started, the last first, and a munged that
# an earlier start left running (its pid file is in $STATE, which goes); then the config and $STATE.
cleanup() {
    local status=$? index
    set +e
    trap - EXIT INT TERM
    if [ "$status" -eq 130 ] || [ "$status" -eq 143 ]; then
        say "start interrupted; stopping what it started"
    else
        say "start failed; stopping what it started"
    fi
    tail -n 20 "$STATE"/log/*.out >&2 2>/dev/null # each daemon's output, its log included
    for ((index = ${#STARTED[@]} - 1; index >= 0; index--)); do
        stop_pid "${STARTED[index]}"
    done
    stop_pid_file "$STATE/munged.pid"
    [ -n "$WROTE_CONF" ] && rm -f "$CONF"
    rm -rf "$STATE"
    exit $((status == 0 ? 1 : status))
}

# Starts `$@` as a daemon in a session of its own (no terminal; its output to $STATE/log/<name>.out) and
# records its pid in STARTED and in $STATE/<name>.pid, for `cleanup` and `stop`. setsid and setpriv exec
# the command: $! is the daemon itself.
launch() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 &
    STARTED+=("$!")
    echo "$!" >"$STATE/$name.pid"
}

start_munge() {
    if munge_works; then
        return # the machine's own munged is up: use it
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key && chmod 0755 /run/munge
    launch munged setpriv --reuid=munge --regid=munge --init-groups "$(command -v munged)" --foreground
    for _ in $(seq 1 50); do
        munge_works && return
        alive munged || break
        sleep 0.1
    done
    say "munged did not start"
    return 1
}

alive() { live "$(cat "$STATE/$1.pid" 2>/dev/null)"; } # the daemon `launch` started as $1

write_conf() {
    mkdir -p /etc/slurm "$STATE/spool/ctld" "$STATE/spool/d"
    WROTE_CONF=1
    cat >"$CONF" <<EOF
$MARK
ClusterName=linreg
SlurmctldHost=$HOST
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
NodeName=$HOST CPUs=$CPUS RealMemory=$MEMORY State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    need_root
    install_packages
    if running; then
        say "already running (partition $PARTITION)"
        return
    fi
    check_prerequisites
    # from here on, a failure or an interruption stops what was started
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$STATE/log"
    start_munge
    write_conf
    launch slurmctld "$(command -v slurmctld)" -D -i # -D: in the foreground, its pid is $!; -i: ignore old state
    launch slurmd "$(command -v slurmd)" -D
    for _ in $(seq 1 120); do
        if running; then
            trap - EXIT INT TERM
            say "up: node $HOST, $CPUS CPUs, partition $PARTITION"
            return
        fi
        for daemon in slurmctld slurmd; do
            if ! alive "$daemon"; then
                say "$daemon exited"
                exit 1
            fi
        done
        sleep 0.5
    done
    say "did not come up within 60 s"
    exit 1
}

stop_pid() { # the process $1, and wait until it is gone
    local pid=$1
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        live "$pid" || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

stop_pid_file() { # the daemon whose pid file is $1
    [ -s "$1" ] || return 0
    stop_pid "$(cat "$1")"
}

stop() {
    need_root
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        say "$CONF was not written by this script; nothing to stop"
        return
    fi
    if [ -e "$CONF" ] && scontrol ping 2>/dev/null | grep -q "is UP"; then # scancel waits 18 s for a dead one
        scancel --full --quiet "--partition=$PARTITION" 2>/dev/null || true
    fi
    stop_pid_file "$STATE/slurmd.pid"
    stop_pid_file "$STATE/slurmctld.pid"
    stop_pid_file "$STATE/munged.pid" # only when start started munged (else it used the machine's own)
    if [ -e "$STATE/started-munged" ]; then # a cluster started by this script's earlier version
        stop_pid_file /run/munge/munged.pid
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
