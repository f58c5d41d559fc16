#!/usr/bin/env bash
# End-to-end check of sharded training on a real Slurm cluster: a single
# node on loopback (munged, slurmctld, slurmd), a job array of
# `cfmem run` shards into one experiment directory, then a dependent job
# that runs `cfmem report`. The records and the report must equal those
# of a single-process run. Run as root on a throwaway machine:
#
#     bash scripts/slurm-e2e.sh
#
# It installs slurm-wlm and munge from Debian if missing, keeps every file
# under a fresh /tmp/cfmem-slurm.* directory, and stops the daemons it
# started (by PID) on exit. Exit status 0 means the check passed; 77 means
# Slurm could not be installed (no package mirror), so nothing was checked.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/cfmem-slurm.XXXXXX)
MODELS=8
SHARDS=4
PIDS=()

log() { echo "[slurm-e2e] $*"; }

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge from Debian"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; }; then
        log "could not install Slurm; skipping"
        exit 77
    fi
fi

log "building cfmem"
# Where cargo puts the binary (CARGO_TARGET_DIR and cargo configs respected).
BIN=$(bash "$ROOT/scripts/cfmem-bin.sh")

# --- munge ------------------------------------------------------------------
mkdir -p "$WORK/munge"
chmod 700 "$WORK/munge"
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
SOCKET="$WORK/munge/munge.socket"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$SOCKET" \
    --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/munge/munged.log" \
    --seed-file="$WORK/munge/munged.seed" > "$WORK/munge/stdout" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$SOCKET" ] && break; sleep 0.1; done
[ -S "$SOCKET" ] || { log "munged did not start"; cat "$WORK/munge/munged.log"; exit 1; }

# --- slurm.conf ---------------------------------------------------------------
CPUS=$(nproc)
mkdir -p "$WORK/state" "$WORK/spool"
export SLURM_CONF="$WORK/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=cfmem
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld -D -i -f "$SLURM_CONF" > "$WORK/slurmctld.stdout" 2>&1 &
PIDS+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" > "$WORK/slurmd.stdout" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
    [ "$state" = "idle" ] && break
    sleep 0.2
done
[ "$state" = "idle" ] || { log "node not idle ($state)"; tail -20 "$WORK/slurmctld.log" "$WORK/slurmd.log"; exit 1; }
log "cluster up: $(sinfo -h -o '%P %a %D %T')"

# --- the experiment -----------------------------------------------------------
CORPUS="$WORK/corpus.jsonl"
head -n 40 "$ROOT/datasets/devil.jsonl" > "$CORPUS"
FLAGS=(--corpus "$CORPUS" --models "$MODELS" --epochs 2 --batch-size 8 --jobs 1)
EXP="$WORK/exp"
ARRAY=$(sbatch --parsable --array=0-$((SHARDS - 1)) --cpus-per-task=1 --output="$WORK/shard-%a.out" \
    --wrap="$BIN run --out $EXP ${FLAGS[*]}")
REPORT=$(sbatch --parsable --dependency=afterok:"$ARRAY" --output="$WORK/report.out" \
    --wrap="$BIN report $EXP --csv $WORK/slurm.csv --top 5")
log "submitted array job $ARRAY ($SHARDS shards) and report job $REPORT"

# Meanwhile, the single-process reference.
"$BIN" run --out "$WORK/ref" "${FLAGS[@]}" > "$WORK/ref.out" 2>&1
"$BIN" report "$WORK/ref" --csv "$WORK/ref.csv" --top 5 >> "$WORK/ref.out"

for _ in $(seq 1200); do
    [ -z "$(squeue -h -o %i)" ] && break
    sleep 0.5
done
[ -z "$(squeue -h -o %i)" ] || { log "jobs still queued: $(squeue)"; exit 1; }
state=$(scontrol show job "$REPORT" | grep -o 'JobState=[A-Z]*' | cut -d= -f2)
[ "$state" = "COMPLETED" ] || { log "report job $state"; cat "$WORK"/shard-*.out "$WORK/report.out"; exit 1; }

# --- checks -------------------------------------------------------------------
for s in $(seq 0 $((SHARDS - 1))); do
    grep -q "shard $s/$SHARDS" "$WORK/shard-$s.out" || { log "shard $s did not see its shard"; cat "$WORK/shard-$s.out"; exit 1; }
done
for i in $(seq 0 $((MODELS - 1))); do
    f=$(printf 'runs/model-%06d.rec' "$i")
    cmp -s "$EXP/$f" "$WORK/ref/$f" || { log "$f differs from the single-process run"; exit 1; }
done
cmp -s "$WORK/slurm.csv" "$WORK/ref.csv" || { log "report differs"; diff "$WORK/slurm.csv" "$WORK/ref.csv" | head; exit 1; }
"$BIN" status "$EXP"
log "PASS: $MODELS records from a $SHARDS-task job array equal the single-process run, and so does the report"
