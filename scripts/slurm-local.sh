#!/usr/bin/env bash
# A single-node Slurm on this machine, for trying the job-array recipes (README, "Shards and
# mi-merge") and for tests. Everything lives in one directory (default /tmp/mi-slurm): the config,
# the munge key and socket, state, logs and pid files; nothing under /etc is changed.
#   scripts/slurm-local.sh start [DIR]    install slurm-wlm and munge if missing (apt, as root), start
#                                         munged, slurmctld and slurmd; prints the SLURM_CONF to export
#   scripts/slurm-local.sh stop [DIR]     stop the three daemons by their pid files
#   scripts/slurm-local.sh status [DIR]   sinfo
# Exit 69 when the daemons cannot be installed or started (the reason on stderr).
set -euo pipefail
cmd="${1:-}"
dir="${2:-${MI_SLURM_DIR:-/tmp/mi-slurm}}"
conf="$dir/slurm.conf"

die() { echo "slurm-local: $*" >&2; exit 69; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are not installed (run as root to install them with apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >&2 || die "apt-get install slurm-wlm munge failed"
}

write_config() {
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    local cpus memory
    cpus=$(nproc)
    memory=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
    cat >"$conf.tmp" <<EOF
ClusterName=mi-local
SlurmctldHost=localhost
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=localhost CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$conf.tmp" "$conf"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    install_packages
    write_config
    [ -f "$dir/munge.key" ] || mungekey --create --keyfile="$dir/munge.key" >&2 || die "mungekey failed"
    chmod 600 "$dir/munge.key"
    if ! alive "$dir/munged.pid"; then
        munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
            --log-file="$dir/log/munged.log" --seed-file="$dir/munge.seed" </dev/null >/dev/null 2>&1 ||
            die "munged did not start ($dir/log/munged.log)"
    fi
    export SLURM_CONF="$conf"
    # The daemons keep no descriptor of ours (a caller reading our output to its end would wait for them).
    alive "$dir/slurmctld.pid" || slurmctld </dev/null >/dev/null 2>&1 || die "slurmctld did not start ($dir/log/slurmctld.log)"
    alive "$dir/slurmd.pid" || slurmd </dev/null >/dev/null 2>&1 || die "slurmd did not start ($dir/log/slurmd.log)"
    for _ in $(seq 1 30); do
        if sinfo -h -o %t 2>/dev/null | grep -q -E '^(idle|mix|alloc)'; then
            echo "export SLURM_CONF=$conf"
            return
        fi
        sleep 1
    done
    die "the node did not come up within 30 s (logs in $dir/log)"
}

stop() {
    for d in slurmd slurmctld munged; do
        if alive "$dir/$d.pid"; then
            kill "$(cat "$dir/$d.pid")"
            for _ in $(seq 1 20); do alive "$dir/$d.pid" || break; sleep 0.5; done
            # A daemon started by a process that ignores SIGTERM ignores it too.
            if alive "$dir/$d.pid"; then kill -9 "$(cat "$dir/$d.pid")"; fi
        fi
        rm -f "$dir/$d.pid"
    done
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF="$conf" sinfo ;;
    *) echo "usage: $0 start|stop|status [DIR]" >&2; exit 64 ;;
esac
