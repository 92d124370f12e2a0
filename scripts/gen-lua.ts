/**
 * `npm run gen:lua`: writes the Lua constants the scripts take from the domain (the lifecycle's
 * phase moves) to packages/store/src/lua/includes/. A test fails while the files are stale.
 */
import { lifecycleLua } from '@sluice/domain';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const out = resolve(import.meta.dirname, '../packages/store/src/lua/includes/lifecycle.lua');
writeFileSync(out, lifecycleLua());
console.log(`wrote ${out}`);
