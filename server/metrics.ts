/**
 * A small Prometheus registry (text exposition format 0.0.4): counters and gauges with labels,
 * histograms with fixed buckets. Made for a hot path: a labelled child is resolved once and then
 * `inc()` is a field increment; nothing allocates per observation.
 */

function escapeLabel(v: string): string { return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"'); }
function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}
function num(v: number): string { return Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN'; }

interface Metric { readonly name: string; render(): string }

export class CounterChild { value = 0; inc(n = 1): void { this.value += n; } }

export class Counter implements Metric {
  private readonly children = new Map<string, { values: string[]; child: CounterChild }>();
  private readonly unlabelled: CounterChild | null;
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[] = []) {
    this.unlabelled = labelNames.length ? null : this.labels();
  }
  /** The child for these label values (in `labelNames` order); keep it for hot paths. */
  labels(...values: string[]): CounterChild {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (!c) { c = { values, child: new CounterChild() }; this.children.set(key, c); }
    return c.child;
  }
  inc(n = 1): void {
    if (!this.unlabelled) throw new Error(`${this.name} has labels; use labels(...).inc()`);
    this.unlabelled.value += n;
  }
  get(...values: string[]): number { return this.children.get(values.join('\u0000'))?.child.value ?? 0; }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { values, child } of this.children.values()) lines.push(`${this.name}${labelText(this.labelNames, values)} ${num(child.value)}`);
    return lines.join('\n');
  }
}

/** A gauge read at scrape time from a callback (or set by hand). */
export class Gauge implements Metric {
  private value = 0;
  constructor(readonly name: string, readonly help: string, private readonly collect?: () => number) {}
  set(v: number): void { this.value = v; }
  get(): number { return this.collect ? this.collect() : this.value; }
  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${num(this.get())}`].join('\n');
  }
}

export class Histogram implements Metric {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {
    for (let i = 1; i < buckets.length; i++) if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must increase`);
    this.counts = new Float64Array(buckets.length + 1);
  }
  observe(v: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
  get total(): number { return this.count; }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cum = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cum += this.counts[i]!;
      lines.push(`${this.name}_bucket{le="${num(this.buckets[i]!)}"} ${cum}`);
    }
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${num(this.sum)}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  private add<M extends Metric>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} is already registered`);
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter { return this.add(new Counter(name, help, labelNames)); }
  gauge(name: string, help: string, collect?: () => number): Gauge { return this.add(new Gauge(name, help, collect)); }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram { return this.add(new Histogram(name, help, buckets)); }

  /** The Prometheus text exposition of every metric. */
  render(): string {
    return `${[...this.metrics.values()].map(m => m.render()).join('\n')}\n`;
  }
}

/** Latency buckets in seconds, 50 µs to 10 s. */
export const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
