/**
 * The tree shows the architecture, and this keeps it so: apps import packages, never another
 * app; packages never import an app; `packages/domain` imports nothing with I/O; no file
 * imports itself back through others (an import cycle, type-only imports included); and every
 * export of an app or a package says what it is for. It reads
 * every TypeScript file's imports and resolves relative paths and `@sluice/*` names to files.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '@sluice/test-support';
import { describe, expect, it } from 'vitest';

const SOURCES = ['apps', 'packages', 'test', 'scripts'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (name === 'node_modules' || name.startsWith('.')) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `@sluice/<name>` (and `@sluice/<name>/<subpath>` for each subpath it exports) → its entry file. */
function workspaceEntries(): Map<string, string> {
  const out = new Map<string, string>();
  for (const group of ['apps', 'packages']) {
    for (const name of readdirSync(resolve(ROOT, group))) {
      const manifest = resolve(ROOT, group, name, 'package.json');
      let pkg: { name: string; exports?: Record<string, string> };
      try {
        pkg = JSON.parse(readFileSync(manifest, 'utf8'));
      } catch {
        continue;
      }
      out.set(pkg.name, resolve(ROOT, group, name, pkg.exports?.['.'] ?? 'src/index.ts'));
      for (const [sub, file] of Object.entries(pkg.exports ?? {})) {
        if (sub.startsWith('./')) out.set(`${pkg.name}/${sub.slice(2)}`, resolve(ROOT, group, name, file));
      }
    }
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"`;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

interface Graph {
  edges: Map<string, { spec: string; target: string | null }[]>;
}

function graph(): Graph {
  const entries = workspaceEntries();
  const edges = new Map<string, { spec: string; target: string | null }[]>();
  for (const file of SOURCES.flatMap((d) => files(resolve(ROOT, d)))) {
    const text = readFileSync(file, 'utf8');
    const list: { spec: string; target: string | null }[] = [];
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      let target: string | null = null;
      if (spec.startsWith('.')) target = resolve(dirname(file), spec);
      else if (spec.startsWith('@sluice/')) target = entries.get(spec) ?? `missing:${spec}`;
      list.push({ spec, target });
    }
    edges.set(file, list);
  }
  return { edges };
}

/** `apps/api`, `packages/store`, `test`, `scripts`: the unit a file belongs to. */
function unitOf(file: string): string {
  const [top, name] = relative(ROOT, file).split('/');
  return top === 'apps' || top === 'packages' ? `${top}/${name}` : top!;
}

const g = graph();

describe('the architecture', () => {
  it('reads the tree (a sanity check that the scan sees the code)', () => {
    expect(g.edges.size).toBeGreaterThan(150);
    const client = resolve(ROOT, 'packages/pg-client/src/client.ts');
    expect(g.edges.get(client)?.some((e) => e.spec === '@sluice/domain')).toBe(true);
  });

  it('every @sluice/* import names a workspace package', () => {
    const missing = [...g.edges].flatMap(([file, list]) => list.filter((e) => e.target?.startsWith('missing:')).map((e) => `${relative(ROOT, file)} → ${e.spec}`));
    expect(missing).toEqual([]);
  });

  it('apps import packages, never another app; packages never import an app', () => {
    const wrong: string[] = [];
    for (const [file, list] of g.edges) {
      const from = unitOf(file);
      for (const e of list) {
        if (e.target === null || e.target.startsWith('missing:')) continue;
        const to = unitOf(e.target);
        if (!to.startsWith('apps/') || to === from) continue;
        // Only the process entries start an app, by path, never by import.
        if (from.startsWith('apps/') || from.startsWith('packages/') || from === 'test' || from === 'scripts') {
          wrong.push(`${relative(ROOT, file)} → ${e.spec}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('packages/domain imports nothing with I/O', () => {
    const io = /^(ioredis|bullmq|undici|pg|express|node:(fs|net|http|https|child_process|worker_threads|dgram))$/;
    const wrong = [...g.edges]
      .filter(([file]) => unitOf(file) === 'packages/domain')
      .flatMap(([file, list]) => list.filter((e) => io.test(e.spec)).map((e) => `${relative(ROOT, file)} → ${e.spec}`));
    expect(wrong).toEqual([]);
  });

  it('has no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, 'open');
      stack.push(file);
      for (const e of g.edges.get(file) ?? []) {
        const to = e.target;
        if (to === null || !g.edges.has(to)) continue;
        if (state.get(to) === 'open') cycles.push([...stack.slice(stack.indexOf(to)), to].map((f) => relative(ROOT, f)).join(' → '));
        else if (!state.has(to)) visit(to);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of g.edges.keys()) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });

  it('every export of an app or a package has a TSDoc line that says what it is for', () => {
    const EXPORT = /^export (?:async )?(?:function|class|interface|type|const|abstract class|enum) ([A-Za-z0-9_]+)|^export type \{/;
    const undocumented: string[] = [];
    for (const file of g.edges.keys()) {
      const unit = unitOf(file);
      if (!unit.startsWith('apps/') && !unit.startsWith('packages/')) continue;
      if (file.endsWith('.test.ts')) continue;
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!EXPORT.test(line)) return;
        let j = i - 1;
        while (j >= 0 && lines[j]!.trim().startsWith('@')) j--;
        if (!(lines[j] ?? '').trim().endsWith('*/')) undocumented.push(`${relative(ROOT, file)}:${i + 1} ${line.slice(0, 60)}`);
      });
    }
    expect(undocumented).toEqual([]);
  });
});
