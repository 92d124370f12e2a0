/**
 * A private redis-server for tests that kill Redis: AOF with fsync always in a temp directory, so
 * a restart comes back with every acknowledged write.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisAnswers as answers } from '@sluice/store';
import { freePort } from './stack.ts';

export interface PrivateRedis {
  url: string;
  port: number;
  dir: string;
  kill9(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess;
  const start = async () => {
    child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction',
    ], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if (await answers(url)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('private redis-server did not come up');
  };
  await start();
  const exited = () => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
  return {
    url,
    port,
    dir,
    async kill9() {
      child.kill('SIGKILL');
      await exited();
    },
    restart: start,
    async stop() {
      child.kill('SIGKILL');
      await exited();
      // An AOF-rewrite child (a fork the SIGKILL does not reach) may still be writing there for a
      // moment; a temp directory left behind is harmless, a failed test run is not.
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      } catch {
        /* left for the OS to clean */
      }
    },
  };
}
