/**
 * Metrics: decorates `app.metrics` (this app's own prom-client registry, which other plugins add
 * their metrics to) and serves it at `GET /metrics` in the Prometheus text format.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { MetricsRegistry } from '../metrics.ts';

declare module 'fastify' {
  interface FastifyInstance { metrics: MetricsRegistry }
}

async function metricsPlugin(app: FastifyInstance): Promise<void> {
  const registry = new MetricsRegistry();
  const started = Date.now();
  // Not prom-client's collectDefaultMetrics: it starts a GC observer and an event-loop monitor per
  // call that nothing stops, and every app (tests build many) would leave one behind.
  registry.gauge('colloquy_uptime_seconds', 'Seconds since the server started.', () => (Date.now() - started) / 1000);
  registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
  app.decorate('metrics', registry);
  app.get('/metrics', async (_req, reply) => {
    reply.type(registry.contentType);
    return registry.render();
  });
}

export default fp(metricsPlugin, { name: 'colloquy-metrics', fastify: '5.x' });
