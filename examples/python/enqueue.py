#!/usr/bin/python3
"""Enqueue a budstikke e-mail campaign from a portal backend, and record the members' consent.

Uses only the documented Redis schema (docs/redis-schema.md) through redis-py (Debian:
python3-redis; run it with /usr/bin/python3, which is the Python Debian's packages belong to).

  /usr/bin/python3 examples/python/enqueue.py --redis redis://127.0.0.1:6379/0 \
      --campaign medlemsmote-2026 --members examples/members.jsonl

members.jsonl: one JSON object per line, {"to": "...", "id": "M1042", "consent": "granted", ...};
"consent" (granted | withdrawn, optional) is written as the member's consent for
email:<category> before the campaign is enqueued; every other field is template data.
"""
import argparse
import json
import sys
import time
from datetime import datetime, timezone

import redis

SUBJECT = "Medlemsmøte i {{branch}}"
TEXT = ("Hei {{name}},\n\n"
        "velkommen til medlemsmøte i {{branch}} torsdag kl. 18.\n\n"
        "Hilsen styret\n")
HTML = ("<p>Hei {{name}},</p>"
        "<p>velkommen til medlemsmøte i <strong>{{branch}}</strong> torsdag kl. 18.</p>"
        "<p>Hilsen styret</p>\n")


def now_rfc3339():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--prefix", default="budstikke:")
    ap.add_argument("--campaign", required=True, help="1-64 of A-Z a-z 0-9 . _ -")
    ap.add_argument("--members", required=True, help="JSON Lines file")
    ap.add_argument("--category", default="newsletter")
    ap.add_argument("--tenant", default="default")
    ap.add_argument("--priority", type=int, default=5)
    ap.add_argument("--from", dest="sender", default="styret@avd-nord.forbundet.example")
    args = ap.parse_args()

    r = redis.Redis.from_url(args.redis)
    P, cid = args.prefix, args.campaign
    camp = f"{P}campaign:{{{cid}}}"          # the {id} hash tag keeps a campaign in one cluster slot
    stream = f"{camp}:recipients"

    members = []
    with open(args.members, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                members.append(json.loads(line))

    # Consent first: the engine checks it when it sends, so it must be there before step 7.
    pipe = r.pipeline(transaction=False)
    for m in members:
        if m.get("consent") in ("granted", "withdrawn") and m.get("id"):
            pipe.hset(f"{P}consent:{{{m['id']}}}", f"email:{args.category}",
                      f"{m['consent']}|{now_rfc3339()}|portal")
    pipe.execute()

    # 1. Claim the id.
    if not r.hsetnx(camp, "id", cid):
        sys.exit(f"campaign {cid} already exists")
    # 2. The definition, templates copied in.
    r.hset(camp, mapping={
        "channel": "email", "category": args.category, "tenant": args.tenant,
        "priority": args.priority, "from": args.sender, "from_name": "Forbundet",
        "state": "active", "created_at": now_rfc3339(),
        "template:subject": SUBJECT, "template:text": TEXT, "template:html": HTML,
    })
    # 3. The stream and its consumer group.
    r.xgroup_create(stream, "budstikke", id="0", mkstream=True)
    # 4. The index `budstikke status` lists.
    r.zadd(f"{P}campaigns:all", {cid: int(time.time() * 1000)})
    # 5. The recipients, a thousand per round trip.
    added = 0
    for i in range(0, len(members), 1000):
        pipe = r.pipeline(transaction=False)
        for m in members[i:i + 1000]:
            data = {k: v for k, v in m.items() if k not in ("to", "id", "consent")}
            fields = {"to": m["to"], "data": json.dumps(data, ensure_ascii=False)}
            if m.get("id"):
                fields["id"] = m["id"]
            pipe.xadd(stream, fields)
        added += len(pipe.execute())
    # 6. Seal: the total, after the last XADD.
    r.hset(camp, "total", added)
    # 7. Hand it to the engine.
    r.zadd(f"{P}campaigns", {cid: args.priority})
    print(f"enqueued campaign {cid}: {added} recipients")


if __name__ == "__main__":
    main()
