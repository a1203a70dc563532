#!/usr/bin/env bash
# The README's first command as a new user runs it: `deploy/dev.sh demo` must end by itself with
# exit 0, report every recipient (one in fifty skipped for withdrawn consent), and leave no
# process listening on the ports it used and no temporary directory behind. Run by .ci/run.
set -uo pipefail
cd "$(dirname "$0")/../.."
n=${1:-300}
before=$(ls -d /tmp/budstikke-demo-* 2>/dev/null | sort)
out=$(mktemp /tmp/demo-test-XXXXXX.log)
start=$SECONDS
timeout 900 deploy/dev.sh demo --recipients "$n" >"$out" 2>&1
code=$?
fail() { echo "demo test: $*"; echo "--- demo output:"; tail -40 "$out"; rm -f "$out"; exit 1; }
[ "$code" -eq 0 ] || fail "exit code $code (124: it did not end within 900 s)"
grep -q "demo: $n recipients in" "$out" || fail "no report line for $n recipients"
skipped=$((n / 50))
# The status row: CAMPAIGN STATE CHAN TOTAL SENT FAILED SKIPPED AMBIGUOUS CANCELLED PENDING RETRYING
row=$(awk '$1 ~ /^demo-/ { print $2, $4, $5, $6, $7, $8, $9, $10, $11 }' "$out")
[ "$row" = "done $n $((n - skipped)) 0 $skipped 0 0 0 0" ] || fail "status row '$row', expected done, $((n - skipped)) sent, $skipped skipped"
after=$(ls -d /tmp/budstikke-demo-* 2>/dev/null | sort)
[ "$before" = "$after" ] || fail "temporary directory left behind: $(comm -13 <(echo "$before") <(echo "$after"))"
ports=$(sed -n 's/^redis-server on 127.0.0.1:\([0-9]*\), SMTP sink on 127.0.0.1:\([0-9]*\)$/\1 \2/p' "$out")
[ -n "$ports" ] || fail "the demo did not say which ports it used"
for p in $ports; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then fail "something still listens on 127.0.0.1:$p"; fi
done
echo "demo test: exit 0 after $((SECONDS - start)) s; $((n - skipped)) sent, $skipped skipped; ports $ports closed; no directory left"
rm -f "$out"
