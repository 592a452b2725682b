import type { Writable } from 'node:stream';

export function printJson(value: unknown, out: Writable = process.stdout): void {
  out.write(`${JSON.stringify(value, (_k, v) => (v instanceof Map ? Object.fromEntries(v) : v), 2)}\n`);
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** A one-line progress display on a terminal; silent when stderr is piped or output is JSON. */
export class Progress {
  private last = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;

  constructor(private readonly label: string, private readonly total: number, quiet = false) {
    this.enabled = !quiet && process.stderr.isTTY === true && !process.env.CI;
  }

  update(done: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100 && done < this.total) return;
    this.last = now;
    const seconds = (now - this.started) / 1000;
    const rate = done / Math.max(seconds, 0.001);
    const eta = rate > 0 ? (this.total - done) / rate : 0;
    const pct = this.total ? Math.floor((done / this.total) * 100) : 100;
    process.stderr.write(`\r${this.label} ${pct}% ${humanBytes(done)}/${humanBytes(this.total)} ${humanBytes(rate)}/s ETA ${eta.toFixed(0)}s\x1b[K`);
  }

  done(): void {
    if (this.enabled) process.stderr.write('\r\x1b[K');
  }
}
