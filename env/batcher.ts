/**
 * Batcher: collects single requests made in the same turn of the event loop and serves them with
 * one batched call. Vector envs step their sub-envs concurrently, so the student's sampling (and
 * reward scoring) of N dialogs becomes one batched model call without the env knowing about N.
 * Requests are served in the order they were made, so batches are deterministic when the callers
 * are.
 */
export class Batcher<Req, Res> {
  private queue: { req: Req; resolve: (r: Res) => void; reject: (e: unknown) => void }[] = [];
  private scheduled = false;

  constructor(
    private readonly run: (reqs: Req[]) => Promise<Res[]>,
    private readonly maxBatch = 256,
  ) {}

  request(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => { void this.flush(); });
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const out = await this.run(batch.map(b => b.req));
        if (out.length !== batch.length) throw new Error(`batched call returned ${out.length} results for ${batch.length} requests`);
        batch.forEach((b, i) => b.resolve(out[i]!));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
  }
}
