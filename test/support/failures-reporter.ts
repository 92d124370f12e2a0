/**
 * Repeats each failed test, with its error, on stdout after vitest's summary: a CI log is often
 * read from its tail, and the default reporter writes the errors to stderr before the summary.
 */
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import { relative } from 'node:path';

interface Failure {
  where: string;
  errors: string[];
}

const ERROR_LINES = 12;

function excerpt(error: { name?: string; message?: string; stack?: string }): string {
  const text = error.stack ?? `${error.name ?? 'Error'}: ${error.message ?? ''}`;
  return text
    .split('\n')
    .filter((line) => !line.includes('node_modules/'))
    .slice(0, ERROR_LINES)
    .join('\n');
}

export default class FailuresReporter implements Reporter {
  private readonly failures: Failure[] = [];

  onTestCaseResult(test: TestCase): void {
    const result = test.result();
    if (result.state !== 'failed') return;
    this.failures.push({
      where: `[${test.project.name}] ${relative(process.cwd(), test.module.moduleId)} > ${test.fullName}`,
      errors: (result.errors ?? []).map(excerpt),
    });
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandled: ReadonlyArray<{ message?: string; stack?: string }>): void {
    // A file or suite that failed outside its tests (an import, a hook) has no failed test case.
    for (const m of modules) {
      const file = `[${m.project.name}] ${relative(process.cwd(), m.moduleId)}`;
      if (m.errors().length > 0) this.failures.push({ where: `${file} (the file)`, errors: m.errors().map(excerpt) });
      for (const s of m.children.allSuites()) {
        if (s.errors().length > 0) this.failures.push({ where: `${file} > ${s.fullName} (the suite)`, errors: s.errors().map(excerpt) });
      }
    }
    for (const e of unhandled) this.failures.push({ where: 'unhandled error', errors: [excerpt(e)] });
    if (this.failures.length === 0) return;
    const lines = [`\nFAILED (${this.failures.length}):`];
    for (const f of this.failures) lines.push(`- ${f.where}`, ...f.errors.map((e) => e.replace(/^/gm, '    ')));
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
