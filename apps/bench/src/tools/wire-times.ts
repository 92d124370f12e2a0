/**
 * Which side put a rolling second over the PG's limit (docs/perf.md, "Over the limit: the wire"):
 * the PG requests' writes, from a loopback capture taken beside bench runs, set against the
 * simulator's arrivals that the runs kept (`--raw`). Writes over the limit in a second: the
 * sending side. Writes within it and arrivals over it: requests written apart and read together.
 *
 *   tcpdump -i lo -n -s 600 -w /tmp/lo.pcap 'tcp and not port 6379 and
 *     (tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x504f5354 or tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420)' &
 *   npm run bench -- --only overload --configs gate1 --raw /tmp/raw
 *   kill -INT %1
 *   npx tsx apps/bench/src/tools/wire-times.ts /tmp/lo.pcap /tmp/raw/overload-*.json
 *
 * The filter keeps segments that start with `POST` or `GET ` (request heads) and leaves Redis out;
 * the bench's PG requests are told from the API's by Sluice's call header.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { testConfig } from '@sluice/config';
import { maxInRollingWindow } from '@sluice/pg-simulator';
import { violationEpisodes } from '../analysis/pg-analysis.ts';
import { busiestPort, pgWrites, readDelay } from '../analysis/wire.ts';

const [capture, ...raws] = process.argv.slice(2);
if (!capture || raws.length === 0) {
  console.error('usage: wire-times.ts CAPTURE.pcap RAW.json [RAW.json ...]');
  process.exit(2);
}
const { PG_RATE_LIMIT: limit, PG_RATE_WINDOW_MS: windowMs } = testConfig();
const writes = pgWrites(readFileSync(capture));
const f = (ms: number): string => ms.toFixed(1);

for (const raw of raws) {
  const arrivals = (JSON.parse(readFileSync(raw, 'utf8')) as { arrivals: [number, string, number][] }).arrivals.map((a) => a[0]).sort((a, b) => a - b);
  const port = arrivals.length ? busiestPort(writes, arrivals[0]!, arrivals[arrivals.length - 1]!) : null;
  if (port === null) {
    console.log(`${basename(raw)}: no PG request of this run in the capture`);
    continue;
  }
  const { times, delay } = readDelay(writes, port, arrivals);
  const d = delay.delay;
  console.log(
    `${basename(raw)}: ${delay.arrivals} arrivals, ${delay.writes} writes to :${port}; most in a rolling second: written ${maxInRollingWindow(times, windowMs)}, read ${maxInRollingWindow(arrivals, windowMs)} (limit ${limit})` +
      (d ? `; read − written p50 ${f(d.p50)}, p99 ${f(d.p99)}, p99.9 ${f(d.p999)}, max ${f(d.max)} ms` : '; counts differ: the capture dropped segments or missed part of the run'),
  );
  // Each rolling second over the limit at the PG, and the same span on the wire.
  for (const e of violationEpisodes(arrivals, limit, windowMs)) {
    const from = e.from - windowMs - 200;
    const near = times.filter((t) => t >= from && t <= e.to + 200);
    const at = new Date(e.from).toISOString().slice(11, 23);
    console.log(`  over the limit at ${at}: read ${e.count} in a second (longest gap ${f(e.gapMs)} ms, ${e.densest50} in 50 ms); written, same span ±200 ms: ${maxInRollingWindow(near, windowMs)} at most in a second`);
  }
}
