/**
 * The README's configuration table and the config schema must name the same variables, and the
 * README's two commands must be the package's scripts.
 */
import { configurationTable, EnvSchema } from '@sluice/config';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '@sluice/test-support';

const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

describe('README', () => {
  it('documents every configuration variable, and no other', () => {
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Architecture'));
    const documented = new Set([...table.matchAll(/^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \|/gm)].flatMap((m) => [m[1]!, m[2]].filter(Boolean) as string[]));
    const schema = new Set(Object.keys(EnvSchema.shape));
    expect([...schema].filter((k) => !documented.has(k))).toEqual([]);
    expect([...documented].filter((k) => !schema.has(k))).toEqual([]);
  });

  it('its configuration table is the one generated from the schema (run `npm run gen:docs` if not)', () => {
    const start = readme.indexOf('<!-- config-table:');
    const end = readme.indexOf('<!-- /config-table -->');
    expect(start).toBeGreaterThan(0);
    const block = readme.slice(readme.indexOf('\n', start) + 1, end).trim();
    expect(block).toBe(configurationTable());
  });

  it('gives the two commands, and they exist', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toMatch(/^npm test /m);
    expect(pkg.scripts.start).toBeTruthy();
    expect(pkg.scripts.test).toContain('vitest run');
  });

  it('.ci/run runs the README test command', () => {
    const ci = readFileSync(resolve(ROOT, '.ci/run'), 'utf8');
    // Its stderr joins stdout (the errors of a failed test, in a log read from its tail).
    expect(ci).toMatch(/^npm test( 2>&1)?$/m);
    expect(ci).toMatch(/^npm ci/m);
  });
});
