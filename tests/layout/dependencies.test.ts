/**
 * The layering of .dependency-cruiser.cjs holds for the whole tree (every import points down, no
 * cycles), and the rules really catch a back-up import and a cycle (checked on a small fixture
 * tree with the same folder names, so the test cannot pass by checking nothing).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/paths.ts';

const run = promisify(execFile);
const CONFIG = path.join(PROJECT_ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = path.join(PROJECT_ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const LAYERS = ['core', 'configs', 'corpora', 'models', 'rewards', 'env', 'protocol', 'agents', 'server', 'cli'];

interface Violation { rule: { name: string }; from: string; to: string; cycle?: { name: string }[] }
interface CruiseResult { summary: { violations: Violation[]; totalCruised: number; error: number } }

async function cruise(cwd: string, folders: string[]): Promise<CruiseResult> {
  // depcruise exits non-zero when it finds violations; the JSON on stdout is the answer either way.
  const r = await run(process.execPath, [DEPCRUISE, '--config', CONFIG, '--output-type', 'json', ...folders], { cwd, maxBuffer: 64 << 20 })
    .catch((err: { stdout?: string; stderr?: string }) => {
      if (!err.stdout) throw new Error(`depcruise failed: ${err.stderr ?? String(err)}`);
      return { stdout: err.stdout };
    });
  return JSON.parse(r.stdout) as CruiseResult;
}

const describeViolation = (v: Violation) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle ${v.cycle.map(c => c.name).join(' → ')})` : ''}`;

describe('the layout: imports point down', () => {
  it('no module of the project imports a layer above its own, and there are no cycles', async () => {
    const r = await cruise(PROJECT_ROOT, LAYERS);
    expect(r.summary.totalCruised).toBeGreaterThan(100);
    expect(r.summary.violations.map(describeViolation)).toEqual([]);
  });

  const fixture = mkdtempSync(path.join(os.tmpdir(), 'colloquy-layout-'));
  afterAll(() => rmSync(fixture, { recursive: true, force: true }));
  const write = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(fixture, rel)), { recursive: true });
    writeFileSync(path.join(fixture, rel), text);
  };

  it('a back-up import (core → env) and a cycle (models ↔ models) are reported with the rule they break', async () => {
    write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowImportingTsExtensions: true, noEmit: true } }));
    write('env/registry.ts', "export const registry = new Map<string, unknown>();\n");
    write('core/errors.ts', "import { registry } from '../env/registry.ts';\nexport const n = registry.size;\n");
    write('models/a.ts', "import { b } from './b.ts';\nexport const a = () => b;\n");
    write('models/b.ts', "import { a } from './a.ts';\nexport const b = () => a;\n");
    write('env/ok.ts', "import { n } from '../core/errors.ts';\nexport const m = n;\n");
    const r = await cruise(fixture, ['core', 'env', 'models']);
    const found = r.summary.violations.map(describeViolation);
    expect(found).toContain('core-imports-down: core/errors.ts → env/registry.ts');
    expect(found.some(v => v.startsWith('no-circular: models/a.ts → models/b.ts'))).toBe(true);
    // The downward import env/ok.ts → core/errors.ts is allowed.
    expect(found.filter(v => v.includes('env/ok.ts'))).toEqual([]);
  });
});
