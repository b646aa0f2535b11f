#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (node "localhost", partition "debug", one fake GPU) to
# test the pipeline through snakemake's SLURM executor. Needs root; no systemd needed.
#
#   scripts/slurm/up.sh [STATE_DIR]      # default $DGFLOW_SLURM_STATE or /tmp/dgflow-slurm
#   scripts/slurm/down.sh [STATE_DIR]    # stop it again
#
# Installs munge, slurmctld, slurmd and slurm-client from Debian's packages if missing, writes
# /etc/slurm/slurm.conf and /etc/slurm/gres.conf from the templates beside this script, starts munged,
# slurmctld and slurmd, and waits until the node is idle. Pid files, spool and logs live in STATE_DIR.
# Progress goes to stderr; the last line on stdout is STATE_DIR. A cluster from STATE_DIR that is
# already up is reused as it is (run down.sh first to apply changed templates); a half-dead one is
# restarted. The cluster is machine-wide (/etc/slurm, ports 6817/6818): tests/test_slurm_cluster.py
# holds the lock file /tmp/dgflow-slurm.lock while it uses it, so two test sessions take turns.
#
# Exit codes: 0 cluster up; 3 the packages are missing and cannot be installed (tests skip on this);
# 1 anything else (the message says what; daemons started by this run are stopped again).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE_DIR=${1:-${DGFLOW_SLURM_STATE:-/tmp/dgflow-slurm}}
WAIT_S=${DGFLOW_SLURM_WAIT_S:-90}
EXIT_CANNOT_INSTALL=3
PACKAGES=(munge slurmctld slurmd slurm-client)
NEEDED_COMMANDS=(munged munge unmunge slurmctld slurmd sinfo squeue sbatch srun scontrol scancel)
MARKER="Written by dgflow-bench scripts/slurm/up.sh"

export PATH="$PATH:/usr/sbin:/sbin"
# The daemons and clients must read /etc/slurm/slurm.conf (see the template for why); an inherited
# SLURM_CONF would point the clients used below somewhere else.
unset SLURM_CONF

log() { echo "up.sh: $*" >&2; }
fail() {
    local code=$1
    shift
    echo "up.sh: error: $*" >&2
    exit "$code"
}

started=0
on_exit() {
    local rc=$?
    if ((rc != 0 && started)); then
        log "stopping the daemons this run started"
        "$HERE/down.sh" "$STATE_DIR" >&2 || true
    fi
}
trap on_exit EXIT

missing_commands() {
    local c
    for c in "${NEEDED_COMMANDS[@]}"; do
        command -v "$c" >/dev/null 2>&1 || echo "$c"
    done
}

pid_alive() { # a zombie counts as gone: PID 1 here may not reap daemons that exit
    [[ -n ${1:-} && -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

install_packages() {
    command -v apt-get >/dev/null 2>&1 || fail "$EXIT_CANNOT_INSTALL" "SLURM is not installed and there is no apt-get to install ${PACKAGES[*]}"
    ((EUID == 0)) || fail "$EXIT_CANNOT_INSTALL" "SLURM is not installed and installing ${PACKAGES[*]} needs root"
    local apt_log="$STATE_DIR/log/apt.log" rc=0 policy=/usr/sbin/policy-rc.d added_policy=0
    log "installing ${PACKAGES[*]} with apt-get (log: $apt_log)"
    # The packages' maintainer scripts would start munge/slurm services at once, without our config
    # (and a munged started there would hold the socket we need). A policy-rc.d that answers 101
    # ("action forbidden") makes them skip that; only ours is removed afterwards.
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # wait for a dpkg lock held by another apt run instead of failing at once
    local apt=(apt-get -o DPkg::Lock::Timeout=120)
    if ! "${apt[@]}" install -y --no-install-recommends "${PACKAGES[@]}" >"$apt_log" 2>&1; then
        # a stale or missing package list is the usual cause: refresh it once and retry
        { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "${PACKAGES[@]}"; } >>"$apt_log" 2>&1 || rc=$?
    fi
    ((added_policy)) && rm -f "$policy"
    if ((rc != 0)); then
        tail -n 15 "$apt_log" >&2 || true
        fail "$EXIT_CANNOT_INSTALL" "apt-get could not install ${PACKAGES[*]} (exit $rc; full log: $apt_log)"
    fi
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every half second
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
    log "$what"
}

munge_works() { munge -n | unmunge; }
ctld_up() { scontrol ping | grep -q 'is UP'; }

show_logs() {
    local f
    for f in "$STATE_DIR"/log/slurmctld.log "$STATE_DIR"/log/slurmd.log "$STATE_DIR"/munge/munged.log; do
        [[ -f $f ]] && { echo "--- last lines of $f" >&2; tail -n 20 "$f" >&2; }
    done
    return 0
}

start_cluster() {
    # --- 1. packages
    if [[ -n $(missing_commands) ]]; then
        install_packages
        [[ -z $(missing_commands) ]] || fail "$EXIT_CANNOT_INSTALL" "still missing after the install: $(missing_commands | tr '\n' ' ')"
    fi
    ((EUID == 0)) || fail 1 "must run as root (writes /etc/slurm, starts munged/slurmctld/slurmd)"

    # --- 2. config: /etc/slurm is the only place the plugin's job step can find it (see slurm.conf.in)
    for f in slurm.conf gres.conf; do
        if [[ -e /etc/slurm/$f ]] && ! grep -q "$MARKER" "/etc/slurm/$f"; then
            if [[ ${DGFLOW_SLURM_FORCE:-0} == 1 ]]; then
                cp -p "/etc/slurm/$f" "/etc/slurm/$f.before-dgflow"
                log "kept the existing /etc/slurm/$f as /etc/slurm/$f.before-dgflow"
            else
                fail 1 "/etc/slurm/$f exists and was not written by this script; move it away or set DGFLOW_SLURM_FORCE=1"
            fi
        fi
    done
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    # slurmd drains a node whose memory is below RealMemory: stay a little under what the kernel reports.
    real_memory=$((mem_kb * 95 / 100 / 1024))
    # fresh controller and slurmd state: no jobs or node states carried over from an earlier cluster
    rm -rf "$STATE_DIR/ctld" "$STATE_DIR/slurmd"
    mkdir -p /etc/slurm "$STATE_DIR/ctld" "$STATE_DIR/slurmd"
    for f in slurm.conf gres.conf; do
        sed -e "s|@STATE_DIR@|$STATE_DIR|g" -e "s|@CPUS@|$cpus|g" -e "s|@REAL_MEMORY@|$real_memory|g" \
            "$HERE/$f.in" >"/etc/slurm/$f"
    done
    log "wrote /etc/slurm/slurm.conf and gres.conf (CPUs=$cpus RealMemory=${real_memory}MB, state in $STATE_DIR)"

    # --- 3. munged, as user munge (it refuses to run as root); slurm authenticates every RPC through it
    if munge_works >/dev/null 2>&1; then
        log "a munged is already running; using it (down.sh will leave it alone)"
    else
        if [[ ! -s /etc/munge/munge.key ]]; then # the package creates it; recreate if it went missing
            su -s /bin/sh munge -c "mungekey --create --keyfile=/etc/munge/munge.key" || fail 1 "could not create /etc/munge/munge.key"
        fi
        # Without systemd nothing creates /run/munge (its socket directory) after a reboot.
        install -d -o munge -g munge -m 0755 /run/munge
        install -d -o munge -g munge -m 0700 "$STATE_DIR/munge"
        started=1
        su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=$STATE_DIR/munge/munged.pid --log-file=$STATE_DIR/munge/munged.log" ||
            { show_logs; fail 1 "munged did not start"; }
        wait_for 20 "munged is up" munge_works || { show_logs; fail 1 "munged started but munge/unmunge fail"; }
    fi

    # --- 4. slurmctld, then slurmd named "localhost" (the node name in slurm.conf, not this host's name)
    started=1
    slurmctld || { show_logs; fail 1 "slurmctld did not start"; }
    wait_for 30 "slurmctld is up" ctld_up || { show_logs; fail 1 "slurmctld does not answer 'scontrol ping'"; }
    slurmd -N localhost || { show_logs; fail 1 "slurmd did not start"; }
}

# --- 0. a cluster from this state dir that is up is reused; a partly running one is restarted
ours_alive() { [[ -f $1 ]] && pid_alive "$(tr -dc 0-9 <"$1")"; }
reuse=0
if ours_alive "$STATE_DIR/slurmctld.pid" && ours_alive "$STATE_DIR/slurmd.pid" &&
    munge_works >/dev/null 2>&1 && ctld_up >/dev/null 2>&1; then
    log "the cluster in $STATE_DIR is already running; reusing it"
    reuse=1
elif ours_alive "$STATE_DIR/slurmctld.pid" || ours_alive "$STATE_DIR/slurmd.pid" || ours_alive "$STATE_DIR/munge/munged.pid"; then
    log "part of an earlier cluster in $STATE_DIR is running; stopping it first"
    "$HERE/down.sh" "$STATE_DIR" >&2 || fail 1 "could not stop the earlier cluster in $STATE_DIR"
fi
mkdir -p "$STATE_DIR/log"
# (an if, not `((reuse)) || start_cluster`: set -e does not apply inside a function called from a || list)
if ((!reuse)); then
    start_cluster
fi

# --- 5. wait for the node to be idle; a node that registered as DOWN/DRAINED (e.g. an earlier state
# or a transient "not responding") is resumed once
deadline=$((SECONDS + WAIT_S))
resumed=0
while :; do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null | head -n 1 || true)
    [[ $state == idle ]] && break
    # a reused cluster may be busy with another run's jobs: up is up
    [[ $reuse == 1 && ($state == mixed || $state == allocated || $state == completing) ]] && break
    if ((SECONDS >= deadline)); then
        sinfo -R >&2 || true
        show_logs
        fail 1 "node localhost is '${state:-absent}', not idle, after ${WAIT_S}s"
    fi
    if [[ $state == down* || $state == drain* || $state == fail* ]] && ((!resumed)); then
        log "node is '$state'; resuming it"
        scontrol update nodename=localhost state=resume || true
        resumed=1
    fi
    sleep 1
done
log "cluster up: node localhost $state in partition debug ($(sinfo -h -o '%c CPUs, %m MB, gres %G' | head -n 1))"
echo "$STATE_DIR"
