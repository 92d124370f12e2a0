/**
 * The progress line on stderr: phase, elapsed time, offered/accepted, backlog and the PG's rate.
 * On a terminal it redraws in place four times a second; into a file (a background run) it
 * writes one line every 5 s, so the log stays readable with `tail`.
 */

/** The figures of the progress line. */
export interface ProgressState {
  phase: string;
  offered: number;
  accepted: number;
  backlog: number | null;
  pgRps: number | null;
}

/** The bench's one-line progress display on stderr. */
export class Progress {
  readonly state: ProgressState = { phase: 'starting', offered: 0, accepted: 0, backlog: null, pgRps: null };
  private phaseStart = Date.now();
  private readonly benchStart = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private readonly tty = process.stderr.isTTY === true;

  start(): void {
    this.timer = setInterval(() => this.draw(), this.tty ? 250 : 5_000);
    this.timer.unref();
  }

  /** Enters a new phase: counters reset, and a fresh line starts. */
  phase(name: string): void {
    if (this.tty) process.stderr.write('\n');
    this.state.phase = name;
    this.state.offered = 0;
    this.state.accepted = 0;
    this.state.backlog = null;
    this.state.pgRps = null;
    this.phaseStart = Date.now();
    this.draw();
  }

  /** A line of its own (a finished phase's summary), without breaking the redrawn line. */
  note(text: string): void {
    process.stderr.write(this.tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
    this.draw();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) process.stderr.write('\n');
  }

  private draw(): void {
    const s = this.state;
    const el = ((Date.now() - this.phaseStart) / 1000).toFixed(1);
    const total = Math.round((Date.now() - this.benchStart) / 1000);
    const parts = [`[${total}s] ${s.phase}`, `${el}s`];
    if (s.offered > 0) parts.push(`offered ${s.offered}`, `accepted ${s.accepted}`);
    if (s.backlog !== null) parts.push(`backlog ${s.backlog}`);
    if (s.pgRps !== null) parts.push(`PG ${s.pgRps} rps`);
    const line = parts.join(' | ');
    process.stderr.write(this.tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }
}
