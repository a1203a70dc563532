#!/usr/bin/env bash
# The urgent lane under load: a newsletter to N members (default 900,000) is sending through
# Postfix's smtp-sink when a 200-recipient SMS with priority 9 is enqueued; prints how long the
# SMS campaign took from its enqueue to done, and how far the newsletter got meanwhile.
# Usage: bench/urgent-lane.sh [BUDSTIKKE] [N]      (needs redis-server and /usr/sbin/smtp-sink)
set -euo pipefail
B=${1:-build/budstikke}
N=${2:-900000}
[ -x /usr/sbin/smtp-sink ] || { echo "needs /usr/sbin/smtp-sink (deploy/dev.sh deps --with-postfix)" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rp=$(port); sp=$(port); mp=$(port)
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" & pids+=($!)
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
/usr/sbin/smtp-sink "${user[@]}" "127.0.0.1:$sp" 1024 & pids+=($!)
"$B" sink sms --listen "127.0.0.1:$mp" >"$work/sms-sink.log" 2>&1 & pids+=($!)
sleep 1
cat >"$work/b.yaml" <<YAML
redis: { url: "redis://127.0.0.1:$rp/0" }
engine: { admin_listen: "" }
smtp: { host: 127.0.0.1, port: $sp, connections: 8, max_messages_per_connection: 100000 }
sms: { gateway: { kind: kannel, url: "http://127.0.0.1:$mp/cgi-bin/sendsms", from: Forbundet } }
YAML
python3 - "$work" "$N" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/members.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"to": f"medlem{i}@fagforbund{i % 50}.example", "id": f"M{i:07}", "name": f"Medlem {i}"}) + "\n")
with open(f"{work}/urgent.jsonl", "w") as f:
    for i in range(200):
        f.write(json.dumps({"to": f"+47 {90000000 + i}", "id": f"U{i:03}", "name": f"Medlem {i}"}) + "\n")
PY
mkdir -p "$work/nl" "$work/sms"
echo 'Nyhetsbrev for {{name}}' >"$work/nl/subject.mustache"
printf 'Hei {{name}},\n\nher er nyhetene denne måneden.\n' >"$work/nl/text.mustache"
echo 'Hei {{name}}! Streiken starter i morgen kl. 06. Møt opp ved porten.' >"$work/sms/sms.mustache"
"$B" enqueue --config "$work/b.yaml" --campaign nyhetsbrev --category tariff --template "$work/nl" \
  --recipients "$work/members.jsonl" --from nyheter@forbundet.example
"$B" --log-level warn run --config "$work/b.yaml" >"$work/engine.log" 2>&1 & pids+=($!)
sent() { "$B" status --config "$work/b.yaml" --campaign "$1" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["sent"], d["state"])'; }
sleep 10
before=$(sent nyhetsbrev | cut -d' ' -f1)
t0=$(date +%s.%N)
"$B" enqueue --config "$work/b.yaml" --campaign streikevarsel --channel sms --category tariff --priority 9 \
  --template "$work/sms" --recipients "$work/urgent.jsonl"
while [ "$(sent streikevarsel | cut -d' ' -f2)" != done ]; do sleep 0.05; done
t1=$(date +%s.%N)
after=$(sent nyhetsbrev | cut -d' ' -f1)
echo "urgent SMS: $(sent streikevarsel | cut -d' ' -f1) of 200 sent, done $(python3 -c "print(round($t1 - $t0, 2))") s after its enqueue began;" \
     "the newsletter sent $((after - before)) meanwhile ($after of $N so far)"
