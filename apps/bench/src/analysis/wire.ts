/**
 * When each PG request went onto the wire, from a loopback capture (`tcpdump -i lo -w`), beside
 * when the PG read it (the simulator's arrival log). The PG counts a request when it has read
 * its headers, so a rolling second over the limit at the PG is one of two things: more than the
 * limit written in a second (the sending side: the gate, or sends later than its margin covers),
 * or requests written apart and read together (transit and the PG's reading delay, which the
 * margin's minimum must cover). The capture's times are the kernel's, taken as each segment
 * passes the loopback device: the sender's write, on the same clock as the simulator's stamps.
 */
import { CALL_HEADER } from '@sluice/pg-client';

/** Link types this reads (pcap's LINKTYPE_*), with the bytes before the IP header. */
const LINK_HEADER: Record<number, number> = { 1: 14, 113: 16, 276: 20 };
const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const MARK = `${CALL_HEADER}:`;

/** One PG request's head on the wire: when (ms epoch, fractional) and to which port. */
export interface WireWrite {
  t: number;
  port: number;
}

/**
 * The segments of a little-endian pcap file that carry a PG request's head (they hold Sluice's
 * call header), in capture order. IPv4 over Ethernet (`-i lo`) or Linux cooked (`-i any`).
 */
export function pgWrites(pcap: Buffer): WireWrite[] {
  const magic = pcap.readUInt32LE(0);
  if (magic !== MAGIC_US && magic !== MAGIC_NS) throw new Error('not a little-endian pcap file (pcapng is not read: capture with tcpdump -w)');
  const fraction = magic === MAGIC_NS ? 1e6 : 1e3;
  const linkType = pcap.readUInt32LE(20) & 0xffff;
  const link = LINK_HEADER[linkType];
  if (link === undefined) throw new Error(`link type ${linkType} is not read (capture on lo or any)`);
  const out: WireWrite[] = [];
  for (let off = 24; off + 16 <= pcap.length; ) {
    const t = pcap.readUInt32LE(off) * 1_000 + pcap.readUInt32LE(off + 4) / fraction;
    const start = off + 16;
    const end = Math.min(pcap.length, start + pcap.readUInt32LE(off + 8));
    off = start + pcap.readUInt32LE(off + 8);
    const ip = start + link;
    if (ip + 20 > end || pcap[ip]! >> 4 !== 4 || pcap[ip + 9] !== 6) continue;
    const tcp = ip + (pcap[ip]! & 0x0f) * 4;
    if (tcp + 20 > end) continue;
    const payload = tcp + (pcap[tcp + 12]! >> 4) * 4;
    if (payload >= end || pcap.subarray(payload, end).indexOf(MARK, 0, 'latin1') === -1) continue;
    out.push({ t, port: pcap.readUInt16BE(tcp + 2) });
  }
  return out;
}

/** How far each arrival trails its write, when both logs hold the same requests. */
export interface ReadDelay {
  /** Requests matched: the writes to the PG's port within the arrivals' span. */
  writes: number;
  arrivals: number;
  /**
   * Arrival − write (ms) of the k-th arrival and the k-th write, both in time order, at these
   * quantiles; null when the counts differ. Requests read in another order than written pair
   * with a neighbour's write, so this is the delay of the stream, not of each request.
   */
  delay: { p50: number; p99: number; p999: number; max: number } | null;
}

/** The writes to `port` between the first and last arrival (50 ms either side), set against the arrivals. */
export function readDelay(writes: readonly WireWrite[], port: number, arrivals: readonly number[]): { times: number[]; delay: ReadDelay } {
  const arr = [...arrivals].sort((a, b) => a - b);
  const times = writes
    .filter((w) => w.port === port && w.t >= arr[0]! - 50 && w.t <= arr[arr.length - 1]! + 50)
    .map((w) => w.t)
    .sort((a, b) => a - b);
  if (times.length !== arr.length || arr.length === 0) return { times, delay: { writes: times.length, arrivals: arr.length, delay: null } };
  const d = arr.map((a, i) => a - times[i]!).sort((a, b) => a - b);
  const q = (p: number): number => d[Math.min(d.length - 1, Math.floor(p * d.length))]!;
  return { times, delay: { writes: times.length, arrivals: arr.length, delay: { p50: q(0.5), p99: q(0.99), p999: q(0.999), max: d[d.length - 1]! } } };
}

/** The port most writes went to in [from, to]: the PG's, in a capture that holds one PG. */
export function busiestPort(writes: readonly WireWrite[], from: number, to: number): number | null {
  const counts = new Map<number, number>();
  for (const w of writes) if (w.t >= from && w.t <= to) counts.set(w.port, (counts.get(w.port) ?? 0) + 1);
  let best: number | null = null;
  for (const [port, n] of counts) if (best === null || n > counts.get(best)!) best = port;
  return best;
}
