import { describe, expect, it } from 'vitest';
import { busiestPort, pgWrites, readDelay } from './wire.ts';

/** One IPv4/TCP segment over Ethernet, as `tcpdump -i lo` writes it. */
function segment(sec: number, usec: number, port: number, payload: string, proto = 6): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[9] = proto;
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(40_000, 0);
  tcp.writeUInt16BE(port, 2);
  tcp[12] = 5 << 4;
  const data = Buffer.concat([eth, ip, tcp, Buffer.from(payload, 'latin1')]);
  const head = Buffer.alloc(16);
  head.writeUInt32LE(sec, 0);
  head.writeUInt32LE(usec, 4);
  head.writeUInt32LE(data.length, 8);
  head.writeUInt32LE(data.length, 12);
  return Buffer.concat([head, data]);
}

function pcap(...segments: Buffer[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt32LE(65_535, 16);
  head.writeUInt32LE(1, 20);
  return Buffer.concat([head, ...segments]);
}

const pgHead = 'POST /v1/payments/confirm HTTP/1.1\r\nhost: pg\r\nx-sluice-call: 7\r\n\r\n';

describe('pgWrites', () => {
  it('keeps the segments with a PG request head, at their capture time and port', () => {
    const writes = pgWrites(
      pcap(
        segment(1_700_000_000, 250_500, 4_000, pgHead),
        segment(1_700_000_000, 300_000, 3_000, 'POST /v1/payments HTTP/1.1\r\nidempotency-key: a\r\n\r\n'),
        segment(1_700_000_000, 310_000, 4_000, pgHead, 17),
        segment(1_700_000_001, 5, 4_000, pgHead),
      ),
    );
    expect(writes).toEqual([
      { t: 1_700_000_000_250.5, port: 4_000 },
      { t: 1_700_000_001_000.005, port: 4_000 },
    ]);
  });

  it('does not take the next segment’s header for this one’s', () => {
    const writes = pgWrites(pcap(segment(1, 0, 4_000, 'GET /v1/payments/x HTTP/1.1\r\n\r\n'), segment(2, 0, 4_000, pgHead)));
    expect(writes).toEqual([{ t: 2_000, port: 4_000 }]);
  });

  it('refuses a file it cannot read', () => {
    expect(() => pgWrites(Buffer.alloc(24))).toThrow(/not a little-endian pcap/);
  });
});

describe('readDelay', () => {
  const writes = [
    { t: 1_000, port: 4_000 },
    { t: 1_002, port: 4_000 },
    { t: 1_003, port: 5_000 },
    { t: 1_010, port: 4_000 },
    { t: 9_000, port: 4_000 },
  ];

  it('pairs the arrivals with the writes to the PG’s port in their span, in time order', () => {
    const { times, delay } = readDelay(writes, 4_000, [1_040, 1_001, 1_003]);
    expect(times).toEqual([1_000, 1_002, 1_010]);
    expect(delay.delay).toEqual({ p50: 1, p99: 30, p999: 30, max: 30 });
  });

  it('says nothing of the delay when the two logs do not hold the same requests', () => {
    expect(readDelay(writes, 4_000, [1_001, 1_003]).delay).toEqual({ writes: 3, arrivals: 2, delay: null });
  });

  it('finds the PG’s port as the one most writes went to', () => {
    expect(busiestPort(writes, 0, 2_000)).toBe(4_000);
    expect(busiestPort(writes, 1_003, 1_003)).toBe(5_000);
    expect(busiestPort(writes, 2_000, 3_000)).toBeNull();
  });
});
