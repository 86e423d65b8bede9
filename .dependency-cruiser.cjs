/**
 * The project's layering: every import points down. Checked by tests/layout/dependencies.test.ts
 * (`npx depcruise --config .dependency-cruiser.cjs core configs corpora models rewards env protocol agents server cli`).
 *
 *   cli, server                 on top: may import everything below (cli may import server)
 *   agents                      env, models, rewards, protocol, corpora, configs, core
 *   protocol                    env (spaces and result types), core
 *   env                         models, rewards, corpora, configs, core
 *   rewards                     configs, core
 *   models                      corpora, configs, core
 *   corpora                     core
 *   configs                     core (schemas and JSON; no code above them)
 *   core                        nothing of the project
 */
const layers = {
  core: [],
  configs: ['core'],
  corpora: ['core'],
  models: ['core', 'configs', 'corpora'],
  rewards: ['core', 'configs'],
  env: ['core', 'configs', 'corpora', 'models', 'rewards'],
  protocol: ['core', 'env'],
  agents: ['core', 'configs', 'corpora', 'models', 'rewards', 'env', 'protocol'],
  server: ['core', 'configs', 'corpora', 'models', 'rewards', 'env', 'protocol', 'agents'],
  cli: ['core', 'configs', 'corpora', 'models', 'rewards', 'env', 'protocol', 'agents', 'server'],
};
const all = Object.keys(layers);

module.exports = {
  forbidden: [
    ...all.map(layer => {
      const allowed = [layer, ...layers[layer]];
      const banned = all.filter(l => !allowed.includes(l));
      return {
        name: `${layer}-imports-down`,
        comment: `${layer}/ may import only ${layers[layer].join(', ') || 'nothing of the project'} (see .dependency-cruiser.cjs)`,
        severity: 'error',
        from: { path: `^${layer}/` },
        to: banned.length ? { path: `^(${banned.join('|')})/` } : { path: '^$' },
      };
    }),
    {
      name: 'no-circular',
      comment: 'no module may import itself through others',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-tests-or-bench-in-code',
      comment: 'code does not import tests/ or bench/',
      severity: 'error',
      from: { path: `^(${all.join('|')})/` },
      to: { path: '^(tests|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)server/public/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.mjs', '.js', '.json'] },
  },
};
