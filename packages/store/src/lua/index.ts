/** Loads the Lua scripts that sit beside this file. Each script's header lists KEYS, ARGV and returns. */
import { readFileSync } from 'node:fs';

export function lua(name: string): string {
  return readFileSync(new URL(`./${name}.lua`, import.meta.url), 'utf8');
}
