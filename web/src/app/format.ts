// Numbers for people: sizes, rates, durations, and a progress meter that
// smooths the rate over the last few seconds.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1.5 MiB`; bytes below 1 KiB as a whole number. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${UNITS[u]}`;
}

/** `1 min 5 s`, `3 h 2 min`, `12 s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Tracks bytes done against a total and gives a rate over a sliding window. */
export class Meter {
  private samples: { t: number; n: number }[] = [];
  private readonly started: number;
  done = 0;

  constructor(
    readonly total: number,
    private readonly now: () => number = () => performance.now(),
    private readonly windowMs = 3000,
  ) {
    this.started = now();
    this.samples.push({ t: this.started, n: 0 });
  }

  add(n: number): void {
    this.done += n;
  }

  /** Bytes per second, over the window (or since the start). */
  rate(): number {
    const t = this.now();
    this.samples.push({ t, n: this.done });
    while (this.samples.length > 2 && t - this.samples[0]!.t > this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (t - first.t) / 1000;
    return dt > 0 ? (this.done - first.n) / dt : 0;
  }

  /** Average bytes per second since the start. */
  averageRate(): number {
    const dt = (this.now() - this.started) / 1000;
    return dt > 0 ? this.done / dt : 0;
  }

  elapsedSeconds(): number {
    return (this.now() - this.started) / 1000;
  }

  /** `12.0 MiB of 1.00 GiB (1 %) · 250 MiB/s · 4 s left` */
  describe(): string {
    const rate = this.rate();
    const pct = this.total > 0 ? Math.floor((this.done / this.total) * 100) : 100;
    const parts = [`${formatBytes(this.done)} of ${formatBytes(this.total)} (${pct} %)`];
    if (rate > 0) {
      parts.push(`${formatBytes(rate)}/s`);
      const left = (this.total - this.done) / rate;
      if (this.done < this.total) parts.push(`${formatDuration(left)} left`);
    }
    return parts.join(' · ');
  }
}
