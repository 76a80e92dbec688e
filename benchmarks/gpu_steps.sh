# Sourced by benchmarks/gpu_check.sh and benchmarks/gpu_tables.sh (OUT must be set).

step() {  # step NAME LIMIT_S FILE COMMAND...: runs COMMAND, appending its output to OUT/FILE
    local name=$1 limit=$2 file=$3 start rc
    shift 3
    start=$(date +%s)
    echo "== $name: $*" >>"$OUT/$file"
    timeout -k 15 "$limit" "$@" >>"$OUT/$file" 2>&1  # KILL if a run swallows the TERM
    rc=$?
    echo "$name: exit $rc after $(($(date +%s) - start)) s" | tee -a "$OUT/log.txt"
}
