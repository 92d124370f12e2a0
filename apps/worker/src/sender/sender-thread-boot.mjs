// The sender thread's entry: worker threads do not inherit the TypeScript loader in every
// runtime (vitest's forks among them), so this plain-JS file registers tsx, then loads the thread.
import { register } from 'tsx/esm/api';

register();
await import('./sender-thread.ts');
