#!/usr/bin/env bash
# Data-parallel training of one preset with MindSpore's msrun launcher.
#
#   scripts/run_distribute_train.sh NUM_WORKERS PRESET [DATA] [ms-gan train flags...]
#
# Starts NUM_WORKERS processes of `python -m ms_gan train --distributed --preset PRESET
# --data DATA [flags]` (DATA defaults to 'builtin'). --batch-size is per worker: the global
# batch is batch x NUM_WORKERS; learning rates stay the preset's unless you pass --lr-g/--lr-d.
# Rank 0 writes the run directory (--out, default runs/PRESET); msrun's logs go to
# LOG_DIR (default OUT/msrun_logs/node_NODE_RANK).
#
# Environment:
#   PYTHON          interpreter with ms_gan installed (default: python3 on PATH); msrun and
#                   every worker run this interpreter
#   MASTER_ADDR     address of node 0 (default 127.0.0.1)
#   MASTER_PORT     scheduler port on node 0 (default: a free port; required with several nodes)
#   NODE_RANK       this machine's index, 0..nodes-1 (default 0)
#   LOCAL_WORKERS   workers started on this machine (default NUM_WORKERS: one machine)
#   LOG_DIR         msrun's log directory
#   CLUSTER_TIMEOUT seconds the workers wait for each other to start (default 600)
#   FAIL_GRACE      seconds to wait after a worker failed before stopping the scheduler (default 10)
#
# Several machines (here 2, 4 workers each, every machine sees the same --out directory):
#   node 0: MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NODE_RANK=0 LOCAL_WORKERS=4 \
#             scripts/run_distribute_train.sh 8 dcgan64 /data/mnist --out /shared/run
#   node 1: MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NODE_RANK=1 LOCAL_WORKERS=4 \
#             scripts/run_distribute_train.sh 8 dcgan64 /data/mnist --out /shared/run
set -e

usage() {
    echo "usage: $0 NUM_WORKERS PRESET [DATA] [ms-gan train flags...]" >&2
    echo "  e.g. $0 2 dcgan64 builtin --epochs 5   (see the header of this script for multi-node use)" >&2
    exit 2
}
fail() {
    echo "run_distribute_train.sh: error: $*" >&2
    exit 2
}
is_count() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ]; }

[ $# -ge 2 ] || usage
NUM_WORKERS=$1
PRESET=$2
shift 2
DATA=builtin
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
    DATA=$1
    shift
fi
is_count "$NUM_WORKERS" || fail "NUM_WORKERS must be a whole number >= 1, got '$NUM_WORKERS'"

PYTHON=${PYTHON:-$(command -v python3)}
[ -n "$PYTHON" ] || fail "no python3 on PATH; set PYTHON to the interpreter that has ms_gan installed"
PY_EXE=$("$PYTHON" -c 'import sys, ms_gan; print(sys.executable)' 2>&1) ||
    fail "$PYTHON cannot import ms_gan ($(echo "$PY_EXE" | tail -n 1)); set PYTHON to the interpreter that" \
         "has ms_gan installed"
PY_DIR=$(dirname "$PY_EXE")
# msrun starts the workers as 'python' or 'python3' found on PATH: put this interpreter's
# directory first so they run the same interpreter (and its site-packages) as we do.
if [ -x "$PY_DIR/python3" ]; then PY_NAME=python3; elif [ -x "$PY_DIR/python" ]; then PY_NAME=python; else
    fail "no python3 or python next to $PY_EXE for msrun to start"
fi
export PATH="$PY_DIR:$PATH"

LOCAL_WORKERS=${LOCAL_WORKERS:-$NUM_WORKERS}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
is_count "$LOCAL_WORKERS" || fail "LOCAL_WORKERS must be a whole number >= 1, got '$LOCAL_WORKERS'"
[ "$LOCAL_WORKERS" -le "$NUM_WORKERS" ] || fail "LOCAL_WORKERS ($LOCAL_WORKERS) exceeds NUM_WORKERS ($NUM_WORKERS)"
[[ "$NODE_RANK" =~ ^[0-9]+$ ]] || fail "NODE_RANK must be a whole number >= 0, got '$NODE_RANK'"
[ "$LOCAL_WORKERS" -lt "$NUM_WORKERS" ] || [ "$NODE_RANK" -eq 0 ] ||
    fail "NODE_RANK=$NODE_RANK but all $NUM_WORKERS workers run here (LOCAL_WORKERS): use NODE_RANK=0"
if [ -z "$MASTER_PORT" ]; then
    [ "$LOCAL_WORKERS" -eq "$NUM_WORKERS" ] ||
        fail "with several nodes set MASTER_PORT (the same free port on every node)"
    MASTER_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
fi

# The run directory, to put msrun's logs in it (the same default as 'ms-gan train').
OUT="runs/$PRESET"
THREADS_GIVEN=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --out) OUT=${args[$((i + 1))]} ;;
        --out=*) OUT=${args[$i]#--out=} ;;
        --threads | --threads=*) THREADS_GIVEN=1 ;;
    esac
done
LOG_DIR=${LOG_DIR:-$OUT/msrun_logs/node_$NODE_RANK}
mkdir -p "$LOG_DIR"
MSRUN_LOG="$LOG_DIR/msrun.log"
: >"$MSRUN_LOG"   # exists before the console tail below opens it
extra=()
if [ "$THREADS_GIVEN" -eq 0 ]; then
    # Share this machine's cores between its workers instead of each using all of them.
    cores=$(nproc 2>/dev/null || echo 1)
    threads=$((cores / LOCAL_WORKERS))
    extra+=(--threads $((threads > 0 ? threads : 1)))
fi

export GLOG_v=${GLOG_v:-3}
export MS_GAN_NODE_RANK=$NODE_RANK   # read by ms_gan.train.distributed.init()

echo "msrun: $NUM_WORKERS worker(s) ($LOCAL_WORKERS here, node $NODE_RANK), scheduler $MASTER_ADDR:$MASTER_PORT," \
     "per-worker batch x $NUM_WORKERS = global batch; logs in $LOG_DIR"
"$PYTHON" -m mindspore.parallel.cluster.run \
    --worker_num "$NUM_WORKERS" --local_worker_num "$LOCAL_WORKERS" \
    --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" --node_rank "$NODE_RANK" \
    --log_dir "$LOG_DIR" --join True --cluster_time_out "${CLUSTER_TIMEOUT:-600}" \
    "$PY_NAME" -m ms_gan train --distributed --preset "$PRESET" --data "$DATA" "${extra[@]}" "$@" \
    >>"$MSRUN_LOG" 2>&1 &
msrun_pid=$!
trap 'kill -INT $msrun_pid 2>/dev/null' INT TERM
# msrun's own output (it includes the workers' logs) on our console, without: INFO lines; the
# workers' one-line user errors, msrun's "exit with exception. Error code: 2" about them and about
# the scheduler the watchdog then stops (the first such error is printed once at the end); msrun's
# own traceback ("Distributed job exited with exception", which says nothing the summary below does not).
tail -n +1 -f --pid=$msrun_pid "$MSRUN_LOG" 2>/dev/null | awk '
    /^\[INFO\]/ || /^ms-gan: error:/ { next }
    /^\[ERROR\] ME.*exit with exception\. Error code: 2\./ { user_error = 1; next }
    user_error && /^\[ERROR\] ME.*Scheduler process [0-9]+ exit with exception/ { next }  # stopped below
    /^Traceback \(most recent call last\):/ { held = $0; holding = 1; next }
    holding && /^[ \t]/ { held = held "\n" $0; next }
    holding { holding = 0; if ($0 !~ /Distributed job exited with exception/) print held "\n" $0; fflush(); next }
    { print; fflush() }
    END { if (holding) print held }' &

# Watchdog: when a worker fails, msrun kills the others but then waits for its scheduler,
# which, if the worker died before joining, waits for it until CLUSTER_TIMEOUT. Stop the
# scheduler (msrun's child with MS_ROLE=MS_SCHED) FAIL_GRACE seconds after the failure.
failed_at=
while kill -0 $msrun_pid 2>/dev/null; do
    if [ -z "$failed_at" ] && grep -q "exit with exception" "$MSRUN_LOG" 2>/dev/null; then
        failed_at=$SECONDS
    fi
    if [ -n "$failed_at" ] && [ $((SECONDS - failed_at)) -ge "${FAIL_GRACE:-10}" ]; then
        for child in $(pgrep -P $msrun_pid 2>/dev/null); do
            if { tr '\0' '\n' <"/proc/$child/environ"; } 2>/dev/null | grep -qx 'MS_ROLE=MS_SCHED'; then
                kill "$child" 2>/dev/null || true
            fi
        done
        failed_at=$((SECONDS + 3600))
    fi
    sleep 1
done
set +e
wait $msrun_pid
rc=$?
set -e
sleep 0.2   # let the console tail flush
if [ $rc -ne 0 ]; then
    # A user mistake (bad data, flags, paths) stops every worker with the same one-line
    # 'ms-gan: error: ...' in its log: show the first worker's, exit 2 like ms-gan itself.
    user_error=
    for ((rank = 0; rank < NUM_WORKERS; rank++)); do
        user_error=$(grep -m1 '^ms-gan: error:' "$LOG_DIR/worker_$rank.log" 2>/dev/null) && break
    done
    if [ -n "$user_error" ]; then
        echo "$user_error" >&2
        exit 2
    fi
    echo >&2
    echo "run_distribute_train.sh: distributed training failed (msrun exit code $rc)" >&2
    shown=0
    for log in "$LOG_DIR"/worker_*.log; do
        [ -f "$log" ] || continue
        if grep -q "Traceback\|Error" "$log"; then
            echo "---- last lines of $log:" >&2
            grep -v '^\[INFO\]' "$log" | tail -n 25 >&2
            shown=1
        fi
    done
    [ $shown -eq 1 ] || echo "no worker reported an error; see $LOG_DIR (scheduler.log, worker_*.log)" >&2
    exit $rc
fi
echo "distributed training finished; run directory: $OUT (written by rank 0)"
