/**
 * Prints the hash of a merchant API key for `MERCHANTS=id:<hash>`:
 *
 *   API_KEY_PEPPER=… npx tsx scripts/hash-key.ts <key>
 *   echo -n <key> | API_KEY_PEPPER=… npx tsx scripts/hash-key.ts     (keeps the key out of shell history)
 *
 * The hash is the one the API checks keys with (`hashApiKey` in packages/config), so the two can never disagree.
 */
import { hashApiKey } from '@sluice/config';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const pepper = process.env.API_KEY_PEPPER;
if (!pepper || pepper.length < 16) {
  console.error('API_KEY_PEPPER must be set (at least 16 characters), the same value the API runs with');
  process.exit(2);
}
const key = process.argv[2] ?? (process.stdin.isTTY ? '' : await readStdin());
if (!key) {
  console.error('usage: API_KEY_PEPPER=… npx tsx scripts/hash-key.ts <key>');
  process.exit(2);
}
console.log(hashApiKey(pepper, key));
