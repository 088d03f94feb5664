#!/usr/bin/env bash
# A single-node Slurm on this machine, for trying the job-array recipes (README, "Shards and
# mi-merge") and for tests. Everything lives in one directory (default /tmp/mi-slurm): the config,
# the munge key and socket, state, logs and pid files; nothing under /etc is changed.
#   scripts/slurm-local.sh start [DIR]    install slurmctld, slurmd, slurm-client and munge if missing (apt,
#                                         as root), start munged, slurmctld and slurmd, check a job runs;
#                                         prints the SLURM_CONF to export
#   scripts/slurm-local.sh stop [DIR]     stop the three daemons by their pid files
#   scripts/slurm-local.sh status [DIR]   sinfo
# Exit 69 when the daemons cannot be installed or started (the reason on stderr).
set -euo pipefail
cmd="${1:-}"
dir="${2:-${MI_SLURM_DIR:-/tmp/mi-slurm}}"
conf="$dir/slurm.conf"

die() { echo "slurm-local: $*" >&2; exit 69; }

# Descriptors other than 0-2 inherited from the caller (another program's pipes, say) are closed
# first: the daemons started below, ours and any a package's install starts, would otherwise keep
# them open for as long as they run, and a reader of such a pipe would wait for its end forever.
close_inherited() {
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
    done
    return 0
}

packages="slurmctld slurmd slurm-client munge"

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || die "$packages are not installed (run as root to install them with apt)"
    local apt="timeout 900 apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends $packages"
    # Package lists that are missing or stale are refreshed once.
    DEBIAN_FRONTEND=noninteractive $apt >&2 ||
        { timeout 600 apt-get -q update >&2 && DEBIAN_FRONTEND=noninteractive $apt >&2; } ||
        die "apt-get install $packages failed"
}

# What the cluster says of its node and jobs, and the daemons' last log lines.
diagnose() {
    {
        echo "--- sinfo -R"; timeout 10 sinfo -R 2>&1
        echo "--- squeue"; timeout 10 squeue 2>&1
        for f in "$dir"/log/slurmctld.log "$dir"/log/slurmd.log; do echo "--- $f"; tail -n 15 "$f" 2>&1; done
    } >&2
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
    close_inherited
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
    local up=""
    for _ in $(seq 1 30); do
        if timeout 10 sinfo -h -o %t 2>/dev/null | grep -q -E '^(idle|mix|alloc)'; then up=1; break; fi
        sleep 1
    done
    [ -n "$up" ] || { diagnose; die "the node did not come up within 30 s (logs in $dir/log)"; }
    # A cluster is up when it runs a job: one task that must end within two minutes.
    if ! (cd "$dir" && timeout -k 5 120 sbatch --wait --quiet --output="$dir/log/check-%j.log" --wrap true) >&2; then
        diagnose
        die "the node did not run a test job within 2 minutes (logs in $dir/log)"
    fi
    echo "export SLURM_CONF=$conf"
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
