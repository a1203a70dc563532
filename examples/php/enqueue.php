<?php
// Enqueue a budstikke e-mail campaign from a portal backend, and record the members' consent.
// Uses only the documented Redis schema (docs/redis-schema.md) through phpredis
// (Debian: php-cli php-redis).
//
//   php examples/php/enqueue.php --redis redis://127.0.0.1:6379/0 \
//       --campaign medlemsmote-2026 --members examples/members.jsonl
//
// members.jsonl: one JSON object per line, {"to": "...", "id": "M1042", "consent": "granted", ...};
// "consent" (granted | withdrawn, optional) is written as the member's consent for
// email:<category> before the campaign is enqueued; every other field is template data.

const SUBJECT = 'Medlemsmøte i {{branch}}';
const TEXT = "Hei {{name}},\n\nvelkommen til medlemsmøte i {{branch}} torsdag kl. 18.\n\nHilsen styret\n";
const HTML = '<p>Hei {{name}},</p><p>velkommen til medlemsmøte i <strong>{{branch}}</strong> torsdag kl. 18.</p>'
           . "<p>Hilsen styret</p>\n";

function now_rfc3339(): string { return gmdate('Y-m-d\TH:i:s\Z'); }

$o = getopt('', ['redis:', 'prefix:', 'campaign:', 'members:', 'category:', 'tenant:', 'priority:', 'from:']) + [
    'redis' => 'redis://127.0.0.1:6379/0', 'prefix' => 'budstikke:', 'category' => 'newsletter',
    'tenant' => 'default', 'priority' => 5, 'from' => 'styret@avd-nord.forbundet.example'];
if (empty($o['campaign']) || empty($o['members'])) {
    fwrite(STDERR, "error: --campaign and --members are required\n");
    exit(2);
}
$url = parse_url($o['redis']);
$r = new Redis();
$r->connect($url['host'] ?? '127.0.0.1', $url['port'] ?? 6379, 5.0);
if (isset($url['pass'])) $r->auth(isset($url['user']) && $url['user'] !== '' ? [$url['user'], $url['pass']] : $url['pass']);
if (isset($url['path']) && trim($url['path'], '/') !== '') $r->select((int) trim($url['path'], '/'));

$P = $o['prefix'];
$cid = $o['campaign'];
$camp = "{$P}campaign:{{$cid}}";  // the {id} hash tag keeps a campaign in one cluster slot
$stream = "$camp:recipients";
$members = [];
foreach (file($o['members'], FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $line)
    $members[] = json_decode($line, true, 512, JSON_THROW_ON_ERROR);

// Consent first: the engine checks it when it sends, so it must be there before step 7.
$pipe = $r->multi(Redis::PIPELINE);
foreach ($members as $m) {
    if (in_array($m['consent'] ?? null, ['granted', 'withdrawn'], true) && !empty($m['id']))
        $pipe->hSet("{$P}consent:{{$m['id']}}", "email:{$o['category']}", "{$m['consent']}|" . now_rfc3339() . '|portal');
}
$pipe->exec();

// 1. Claim the id.
if (!$r->hSetNx($camp, 'id', $cid)) {
    fwrite(STDERR, "error: campaign $cid already exists\n");
    exit(1);
}
// 2. The definition, templates copied in.
$r->hMSet($camp, [
    'channel' => 'email', 'category' => $o['category'], 'tenant' => $o['tenant'], 'priority' => $o['priority'],
    'from' => $o['from'], 'from_name' => 'Forbundet', 'state' => 'active', 'created_at' => now_rfc3339(),
    'template:subject' => SUBJECT, 'template:text' => TEXT, 'template:html' => HTML,
]);
// 3. The stream and its consumer group.
$r->xGroup('CREATE', $stream, 'budstikke', '0', true);
// 4. The index `budstikke status` lists.
$r->zAdd("{$P}campaigns:all", (int) (microtime(true) * 1000), $cid);
// 5. The recipients, a thousand per round trip.
$added = 0;
foreach (array_chunk($members, 1000) as $chunk) {
    $pipe = $r->multi(Redis::PIPELINE);
    foreach ($chunk as $m) {
        $data = array_diff_key($m, ['to' => 1, 'id' => 1, 'consent' => 1]);
        $fields = ['to' => $m['to'], 'data' => json_encode((object) $data, JSON_UNESCAPED_UNICODE)];
        if (!empty($m['id'])) $fields['id'] = $m['id'];
        $pipe->xAdd($stream, '*', $fields);
    }
    $added += count(array_filter($pipe->exec()));
}
// 6. Seal: the total, after the last XADD.
$r->hSet($camp, 'total', $added);
// 7. Hand it to the engine.
$r->zAdd("{$P}campaigns", (int) $o['priority'], $cid);
echo "enqueued campaign $cid: $added recipients\n";
