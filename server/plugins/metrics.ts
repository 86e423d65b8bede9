/**
 * Metrics: decorates `app.metrics` (a Prometheus registry other plugins add their metrics to) and
 * serves it at `GET /metrics` in the Prometheus text format.
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
  registry.gauge('colloquy_uptime_seconds', 'Seconds since the server started.', () => (Date.now() - started) / 1000);
  registry.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
  app.decorate('metrics', registry);
  app.get('/metrics', async (_req, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return registry.render();
  });
}

export default fp(metricsPlugin, { name: 'colloquy-metrics', fastify: '5.x' });
