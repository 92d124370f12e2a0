/**
 * Summarises a V8 CPU profile (`npm run bench -- … --cpu-prof DIR` writes one per process and
 * thread): busy time, garbage collection, self time by package or source file and by function,
 * and, for the frames named on the command line, inclusive time (docs/perf.md).
 *
 *   npx tsx apps/bench/src/tools/profile-summary.ts FILE.cpuprofile [frame …]
 *
 * A frame matches when "<function> <where>" contains the text given, e.g. `moveToFinished`,
 * `apply packages/store`. Times are sampled wall time on the thread: a thread waiting in a
 * system call is counted there, so socket writes read higher than their CPU.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, ...frames] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-summary.ts FILE.cpuprofile [frame …]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0)));

/** A frame's home: its npm package, a node: module, or apps/<app>/<file> and packages/<pkg>/<file>. */
function where(cf: ProfileNode['callFrame']): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(cf.url);
  if (pkg) return pkg[1]!;
  const own = /\/(apps|packages)\/([^/]+)\/src\/(.*)$/.exec(cf.url);
  if (own) return `${own[1]}/${own[2]}/${own[3]}`;
  return cf.url || cf.functionName;
}
const nameOf = (cf: ProfileNode['callFrame']): string => `${cf.functionName || '(anonymous)'} ${where(cf)}`;
const IDLE = new Set(['(idle)', '(program)']);

let total = 0;
let idle = 0;
let gc = 0;
const byWhere = new Map<string, number>();
const byFunction = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, us] of self) {
  const cf = nodes.get(id)!.callFrame;
  total += us;
  if (IDLE.has(cf.functionName)) {
    idle += us;
    continue;
  }
  if (cf.functionName === '(garbage collector)') gc += us;
  byWhere.set(where(cf), (byWhere.get(where(cf)) ?? 0) + us);
  byFunction.set(`${nameOf(cf)}:${cf.lineNumber + 1}`, (byFunction.get(`${nameOf(cf)}:${cf.lineNumber + 1}`) ?? 0) + us);
  // Each distinct frame on the stack gets the sample once.
  const seen = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
    const k = nameOf(nodes.get(n)!.callFrame);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
}
const busy = total - idle;
const line = (k: string, us: number) => `  ${(us / 1e3).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${k}`;
const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => line(k, us));
console.log(`${file}\nbusy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled; garbage collection ${(gc / 1e6).toFixed(2)} s`);
console.log(['self time by package or file (share of busy):', ...top(byWhere, 20)].join('\n'));
console.log(['self time by function:', ...top(byFunction, 20)].join('\n'));
if (frames.length > 0) {
  const chosen = new Map([...inclusive].filter(([k]) => frames.some((f) => k.includes(f))));
  console.log(['inclusive time of the frames asked for:', ...top(chosen, 40)].join('\n'));
}
