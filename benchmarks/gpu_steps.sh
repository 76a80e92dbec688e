# Sourced by benchmarks/gpu_check.sh and benchmarks/gpu_tables.sh (OUT must be set).
#
# BUDGET (seconds, optional): a deadline for the whole script, counted from here. Each step's limit
# is cut to what is left of it (less the 15 s that a cut step may take to stop), and a step with
# less than 20 s left is skipped, so the script ends within BUDGET however slow its steps are.
DEADLINE=${BUDGET:+$(($(date +%s) + BUDGET))}

step() {  # step NAME LIMIT_S FILE COMMAND...: runs COMMAND, appending its output to OUT/FILE
    local name=$1 limit=$2 file=$3 start rc left
    shift 3
    if [ -n "${DEADLINE:-}" ]; then
        left=$((DEADLINE - $(date +%s) - 15))
        if [ "$left" -lt 20 ]; then
            echo "$name: skipped (the budget is spent)" | tee -a "$OUT/log.txt"
            return
        fi
        [ "$left" -lt "$limit" ] && limit=$left
    fi
    start=$(date +%s)
    echo "== $name: $*" >>"$OUT/$file"
    # INT at the limit: pytest then writes its junit file and names its failures (unless a training
    # loop under test takes the INT), and a training run saves its checkpoint; KILL 15 s later.
    timeout -s INT -k 15 "$limit" "$@" >>"$OUT/$file" 2>&1
    rc=$?
    echo "$name: exit $rc after $(($(date +%s) - start)) s (limit $limit s)" | tee -a "$OUT/log.txt"
}
