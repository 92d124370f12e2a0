/**
 * Loads the Lua scripts that sit beside this file. Each script's header lists KEYS, ARGV and
 * returns. A line `--@include <name>` is replaced by `includes/<name>.lua`: what a meaning entails
 * (everything "final" means, say) is written once and shared by every script that needs it, as
 * bullmq does with its `includes/`.
 */
import { readFileSync } from 'node:fs';

const INCLUDE = /^--@include ([a-z-]+)$/gm;

function read(path: string): string {
  return readFileSync(new URL(path, import.meta.url), 'utf8');
}

/** A script's text, with its `--@include` lines expanded. */
export function lua(name: string): string {
  return read(`./${name}.lua`).replace(INCLUDE, (_, include: string) => read(`./includes/${include}.lua`));
}
