#!/usr/bin/env bash
# Stop the one-node SLURM cluster that scripts/slurm/up.sh started: cancel its unfinished jobs, then stop
# slurmd, slurmctld and munged (reverse start order), each by the pid in its pid file under STATE_DIR,
# never by name: other munge or slurm daemons on the machine are left alone. Safe to run twice.
#
#   scripts/slurm/down.sh [STATE_DIR]    # default $DGFLOW_SLURM_STATE or /tmp/dgflow-slurm
#
# Exit codes: 0 nothing of ours runs any more; 1 a daemon did not exit (its pid is named).
set -euo pipefail

STATE_DIR=${1:-${DGFLOW_SLURM_STATE:-/tmp/dgflow-slurm}}
STOP_WAIT_S=${DGFLOW_SLURM_STOP_WAIT_S:-20}
export PATH="$PATH:/usr/sbin:/sbin"
unset SLURM_CONF

log() { echo "down.sh: $*" >&2; }

pid_alive() { # a zombie counts as gone: PID 1 here may not reap daemons that exit
    [[ -n ${1:-} && -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

read_pid() { [[ -f $1 ]] && tr -dc 0-9 <"$1" || true; }

failed=0
stop_daemon() { # stop_daemon NAME PIDFILE
    local name=$1 pidfile=$2 pid i
    pid=$(read_pid "$pidfile")
    if ! pid_alive "$pid"; then
        rm -f "$pidfile"
        return 0
    fi
    # the pid may belong to another program by now (stale file after a reboot): check its name first
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != "$name" ]]; then
        log "$pidfile names pid $pid, which is not $name; leaving it alone"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_WAIT_S * 10; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        log "$name (pid $pid) ignored SIGTERM for ${STOP_WAIT_S}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    if pid_alive "$pid"; then
        log "error: $name (pid $pid) is still running"
        failed=1
        return 0
    fi
    rm -f "$pidfile"
    log "stopped $name (pid $pid)"
}

# Cancel jobs that have not finished, so no job step (slurmstepd and the rule's command) outlives the
# cluster; finished jobs stay listed for MinJobAge and need nothing.
if pid_alive "$(read_pid "$STATE_DIR/slurmctld.pid")" && command -v squeue >/dev/null 2>&1; then
    active() { squeue -h -t PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING -o %i 2>/dev/null || true; }
    jobs=$(active)
    if [[ -n $jobs ]]; then
        log "cancelling unfinished jobs: ${jobs//$'\n'/ }"
        # shellcheck disable=SC2086  # one argument per job id
        scancel $jobs || true
        for ((i = 0; i < STOP_WAIT_S * 2; i++)); do
            [[ -z $(active) ]] && break
            sleep 0.5
        done
    fi
fi

stop_daemon slurmd "$STATE_DIR/slurmd.pid"
stop_daemon slurmctld "$STATE_DIR/slurmctld.pid"
stop_daemon munged "$STATE_DIR/munge/munged.pid"

if ((failed)); then
    echo "down.sh: error: some daemons of the cluster in $STATE_DIR did not stop" >&2
    exit 1
fi
log "cluster in $STATE_DIR is down"
