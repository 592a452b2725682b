// The hashing worker started from its TypeScript source (tests import src/ under tsx): a worker thread
// does not inherit the parent's `--import tsx`, so it registers tsx itself before loading the worker.
const { register } = await import('tsx/esm/api');
register();
await import('./worker.ts');
