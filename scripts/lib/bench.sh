# shellcheck shell=bash
# Shared by the benchmark scripts (scripts/pgbench-parity, scripts/client-cpu): sourced, not run.
# The sourcing script sets `script` (its name, for messages) before sourcing.

die() { echo "${script:-bench}: $*" >&2; exit 1; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

# Builds the release worker at $1 when it is missing (the default path's build).
ensure_worker() {
  local worker="$1"
  [ -x "$worker" ] && return 0
  echo "== building unistore-worker (release)"
  cargo build --release -p unistore-worker >/dev/null || die "cargo build --release -p unistore-worker failed"
  [ -x "$worker" ] || die "no executable at $worker after the build (UNISTORE_WORKER?)"
}

# The `pgbench -i -s 10` tables at URL $1 (created when pgbench_accounts is not whole), analyzed.
ensure_pgbench_tables() {
  local url="$1" rows
  rows="$(psql -X -q -t -A -d "$url" -c "SELECT count(*) FROM pgbench_accounts" 2>/dev/null || echo 0)"
  if [ "$rows" != 1000000 ]; then
    echo "== initializing pgbench tables (scale 10)"
    command -v pgbench >/dev/null || die "pgbench is not installed (Debian: postgresql-client)"
    pgbench -i -s 10 -q "$url" >/dev/null 2>&1 || die "pgbench -i -s 10 failed"
  fi
  psql -X -q -d "$url" -c "VACUUM ANALYZE pgbench_accounts" >/dev/null
}

# Prints "qps ops user_seconds system_seconds errors" of a bench run from its --json summary ($1)
# and the `/usr/bin/time -f "%U %S"` file ($2). CPU is the whole process's, so `ops` is every
# operation it completed (all phases).
bench_cpu() {
  python3 - "$1" "$2" <<'PY' || die "could not read the bench's JSON summary"
import json, sys
summary = json.load(open(sys.argv[1]))
total = summary["total"]
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
ops = summary.get("completed_ops_all_phases", total["ops"])
print(total["qps"], ops, user, system, total.get("errors", 0))
PY
}
