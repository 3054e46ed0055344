#!/usr/bin/env bash
# The database benchmark: rows/s into PostgreSQL with the *core* policy of bench/policy (HMAC of
# the email, masked phone, birth year, redacted notes, consent filter), beside what a user gets
# with no privacy at all on the same rows and the same table:
#   - `psql \copy` of hushflow's output rows into the table (with its primary key), against
#     hushflow's COPY sink (`mode = "append"`);
#   - COPY into a temporary table + INSERT … ON CONFLICT written by hand, against hushflow's
#     upsert sink (`mode = "upsert"`), both into a table already holding every key;
#   - PostgreSQL → PostgreSQL with the same policy (source table loaded with `\copy`).
# Rates are input records/s for hushflow (the policy filters on consent) and rows/s for psql.
# usage: bench/postgres/run.sh [ROWS]   (default 1000000). Needs PostgreSQL at 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-1000000}

cargo build --release --locked -q -p hushflow
hf=$PWD/target/release/hushflow
work=$PWD/target/bench-postgres
rm -rf "$work"; mkdir -p "$work"
export HUSHFLOW_STATE_DIR=$work/state
export HF_BENCH_PEPPER=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
export HF_BENCH_DB=postgres://postgres@127.0.0.1:5432/hf_bench
psql="psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres"
$psql -d postgres -c "DROP DATABASE IF EXISTS hf_bench WITH (FORCE)" -c "CREATE DATABASE hf_bench"
db="$psql -d hf_bench"

"$hf" sample contacts --rows "$rows" --seed 5 --out "$work/contacts.csv" >/dev/null

# policy.toml SOURCE-TABLE SINK-TABLE MODE: the core policy into PostgreSQL.
pipeline() {
  local source=$1 table=$2 mode=$3
  {
    printf '[pipeline]\nname = "bench-pg-%s-%s"\nkey = "id"\n\n' "$table" "$mode"
    if [ "$source" = csv ]; then
      printf '[source]\ntype = "csv"\npath = "contacts.csv"\n\n'
    else
      printf '[source]\ntype = "postgres"\nurl = "env:HF_BENCH_DB"\ntable = "%s"\n\n' "$source"
    fi
    sed -n '/^\[policy\]/,/^\[sink\]/p' bench/policy/core.toml | sed '$d'
    printf '[sink]\ntype = "postgres"\nurl = "env:HF_BENCH_DB"\ntable = "%s"\nmode = "%s"\n' "$table" "$mode"
  } > "$work/$table-$mode.toml"
  echo "$work/$table-$mode.toml"
}

# seconds COMMAND…: wall time of one run.
seconds() {
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || [ $? -eq 3 ]; t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

# The table both sides load into, with the types hushflow gives it (birth year an integer).
columns="id text PRIMARY KEY, first_name text, last_name text, email text, phone text, company text, city text, country text, birth_date integer, marketing_opt_in text, created_at text, updated_at text, notes text"

# 1. COPY: hushflow's append sink, then psql \copy of the rows it wrote, into fresh tables.
p=$(pipeline csv copied append)
t_hf_copy=$(seconds "$hf" run "$p")
$db -c "\\copy (SELECT id, first_name, last_name, email, phone, company, city, country, birth_date, marketing_opt_in, created_at, updated_at, notes FROM copied) TO '$work/out.csv' WITH (FORMAT csv)"
out_rows=$(wc -l < "$work/out.csv")
$db -c "CREATE TABLE by_psql ($columns)"
t_psql_copy=$(seconds $db -c "\\copy by_psql FROM '$work/out.csv' WITH (FORMAT csv)")

# 2. Upsert into tables that hold every key already.
p=$(pipeline csv copied upsert)
t_hf_upsert=$(seconds "$hf" run "$p")
cat > "$work/upsert.sql" <<SQL
BEGIN;
CREATE TEMP TABLE stage (LIKE by_psql INCLUDING DEFAULTS) ON COMMIT DROP;
\\copy stage FROM '$work/out.csv' WITH (FORMAT csv)
INSERT INTO by_psql SELECT * FROM stage ON CONFLICT (id) DO UPDATE SET first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, email = EXCLUDED.email, phone = EXCLUDED.phone, company = EXCLUDED.company, city = EXCLUDED.city, country = EXCLUDED.country, birth_date = EXCLUDED.birth_date, marketing_opt_in = EXCLUDED.marketing_opt_in, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, notes = EXCLUDED.notes;
COMMIT;
SQL
t_psql_upsert=$(seconds $db -f "$work/upsert.sql")

# 1b/2b. The sink alone: hushflow loads the very rows psql loaded (the policy's output, read back
# with a keep-only policy), into a fresh table and then over every key again.
{ echo "id,first_name,last_name,email,phone,company,city,country,birth_date,marketing_opt_in,created_at,updated_at,notes"; cat "$work/out.csv"; } > "$work/out-header.csv"
for mode in append upsert; do
  {
    printf '[pipeline]\nname = "bench-pg-sink-%s"\nkey = "id"\n\n[source]\ntype = "csv"\npath = "out-header.csv"\n\n[policy]\n' "$mode"
    for f in id first_name last_name email phone company city country birth_date marketing_opt_in created_at updated_at notes; do
      printf 'fields.%s = "keep"\n' "$f"
    done
    printf '\n[sink]\ntype = "postgres"\nurl = "env:HF_BENCH_DB"\ntable = "sink_only"\nmode = "%s"\n' "$mode"
  } > "$work/sink-$mode.toml"
done
$db -c "CREATE TABLE sink_only ($columns)"
t_sink_copy=$(seconds "$hf" run "$work/sink-append.toml")
t_sink_upsert=$(seconds "$hf" run "$work/sink-upsert.toml")

# 3. PostgreSQL to PostgreSQL: the raw contacts in a source table, the policy on the way.
$db -c "CREATE TABLE contacts (id text PRIMARY KEY, first_name text, last_name text, email text, phone text, company text, job_title text, street text, city text, postal_code text, country text, birth_date text, marketing_opt_in text, created_at text, updated_at text, notes text)"
$db -c "\\copy contacts FROM '$work/contacts.csv' WITH (FORMAT csv, HEADER true)"
p=$(pipeline contacts pg2pg append)
t_pg2pg=$(seconds "$hf" run "$p")

awk -v n="$rows" -v o="$out_rows" -v hc="$t_hf_copy" -v pc="$t_psql_copy" -v hu="$t_hf_upsert" -v pu="$t_psql_upsert" -v pp="$t_pg2pg" -v sc="$t_sink_copy" -v su="$t_sink_upsert" 'BEGIN {
  printf "rows: %d in, %d out after the consent filter\n", n, o
  printf "COPY    hushflow CSV->PG append  %9.0f records/s in (%8.0f rows/s out, %.2fs)\n", n / hc, o / hc, hc
  printf "        psql \\copy (no privacy)   %9.0f rows/s (%.2fs)   hushflow at %.0f%% of its rows/s\n", o / pc, pc, 100 * pc / hc
  printf "UPSERT  hushflow CSV->PG upsert  %9.0f records/s in (%8.0f rows/s out, %.2fs)\n", n / hu, o / hu, hu
  printf "        COPY + ON CONFLICT by hand %9.0f rows/s (%.2fs)   hushflow at %.0f%% of its rows/s\n", o / pu, pu, 100 * pu / hu
  printf "PG->PG  hushflow append          %9.0f records/s in (%8.0f rows/s out, %.2fs)\n", n / pp, o / pp, pp
  printf "the sink alone, on the rows psql loaded (keep-only policy):\n"
  printf "COPY    hushflow append          %9.0f rows/s (%.2fs)   %.0f%% of psql \\copy\n", o / sc, sc, 100 * pc / sc
  printf "UPSERT  hushflow upsert          %9.0f rows/s (%.2fs)   %.0f%% of the hand-written upsert\n", o / su, su, 100 * pu / su }'
