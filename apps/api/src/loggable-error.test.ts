/** What the API logs of an error: never the arguments of the Redis command that failed. */
import { describe, expect, it } from 'vitest';
import { loggableError } from './errors.ts';

describe('loggableError', () => {
  it('keeps kind, message and code, and drops attached command arguments', () => {
    const e = Object.assign(new Error('ERR script failed'), { code: 'ERR', command: { name: 'evalsha', args: ['secret-metadata'] } });
    const l = loggableError(e);
    expect(l).toMatchObject({ type: 'Error', message: 'ERR script failed', code: 'ERR' });
    expect(JSON.stringify(l)).not.toContain('secret-metadata');
  });
});
