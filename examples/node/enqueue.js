#!/usr/bin/env node
// Enqueue a budstikke e-mail campaign from a portal backend, and record the members' consent.
// Uses only the documented Redis schema (docs/redis-schema.md) through ioredis.
//
//   (cd examples/node && npm ci)
//   node examples/node/enqueue.js --redis redis://127.0.0.1:6379/0 \
//       --campaign medlemsmote-2026 --members examples/members.jsonl
//
// members.jsonl: one JSON object per line, {"to": "...", "id": "M1042", "consent": "granted", ...};
// "consent" (granted | withdrawn, optional) is written as the member's consent for
// email:<category> before the campaign is enqueued; every other field is template data.
'use strict';
const fs = require('fs');
const Redis = require('ioredis');

const SUBJECT = 'Medlemsmøte i {{branch}}';
const TEXT = 'Hei {{name}},\n\nvelkommen til medlemsmøte i {{branch}} torsdag kl. 18.\n\nHilsen styret\n';
const HTML = '<p>Hei {{name}},</p><p>velkommen til medlemsmøte i <strong>{{branch}}</strong> torsdag kl. 18.</p>' +
             '<p>Hilsen styret</p>\n';

function options(argv) {
  const o = { redis: 'redis://127.0.0.1:6379/0', prefix: 'budstikke:', category: 'newsletter', tenant: 'default',
              priority: 5, from: 'styret@avd-nord.forbundet.example' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o) && key !== 'campaign' && key !== 'members') throw new Error(`unknown option ${argv[i]}`);
    o[key] = argv[i + 1];
  }
  if (!o.campaign || !o.members) throw new Error('--campaign and --members are required');
  o.priority = Number(o.priority);
  return o;
}

const nowRfc3339 = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

async function main() {
  const o = options(process.argv.slice(2));
  const r = new Redis(o.redis);
  const P = o.prefix, cid = o.campaign;
  const camp = `${P}campaign:{${cid}}`;  // the {id} hash tag keeps a campaign in one cluster slot
  const stream = `${camp}:recipients`;
  const members = fs.readFileSync(o.members, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  try {
    // Consent first: the engine checks it when it sends, so it must be there before step 7.
    let pipe = r.pipeline();
    for (const m of members) {
      if ((m.consent === 'granted' || m.consent === 'withdrawn') && m.id)
        pipe.hset(`${P}consent:{${m.id}}`, `email:${o.category}`, `${m.consent}|${nowRfc3339()}|portal`);
    }
    await pipe.exec();

    // 1. Claim the id.
    if (!(await r.hsetnx(camp, 'id', cid))) throw new Error(`campaign ${cid} already exists`);
    // 2. The definition, templates copied in.
    await r.hset(camp, {
      channel: 'email', category: o.category, tenant: o.tenant, priority: o.priority, from: o.from,
      from_name: 'Forbundet', state: 'active', created_at: nowRfc3339(),
      'template:subject': SUBJECT, 'template:text': TEXT, 'template:html': HTML,
    });
    // 3. The stream and its consumer group.
    await r.xgroup('CREATE', stream, 'budstikke', '0', 'MKSTREAM');
    // 4. The index `budstikke status` lists.
    await r.zadd(`${P}campaigns:all`, Date.now(), cid);
    // 5. The recipients, a thousand per round trip.
    let added = 0;
    for (let i = 0; i < members.length; i += 1000) {
      pipe = r.pipeline();
      for (const m of members.slice(i, i + 1000)) {
        const { to, id, consent, ...data } = m;
        const fields = ['to', to, 'data', JSON.stringify(data)];
        if (id) fields.push('id', id);
        pipe.xadd(stream, '*', ...fields);
      }
      for (const [err] of await pipe.exec()) {
        if (err) throw err;
        added += 1;
      }
    }
    // 6. Seal: the total, after the last XADD.
    await r.hset(camp, 'total', added);
    // 7. Hand it to the engine.
    await r.zadd(`${P}campaigns`, o.priority, cid);
    console.log(`enqueued campaign ${cid}: ${added} recipients`);
  } finally {
    r.disconnect();
  }
}

main().catch((e) => {
  console.error(`error: ${e.message}`);
  process.exit(1);
});
