/**
 * `npm run fixtures`: rebuild the committed sample images under testdata/.
 * Usage: node --import tsx testdata/build.ts [output-root]   (default: this directory)
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixtures } from './builder.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(process.argv[2] ?? here);

const files = await buildFixtures(root);
const sizes = new Map<string, number>();
for (const [name, bytes] of files) {
  const parts = name.split('/');
  const key = parts[0] === 'layouts' ? parts.slice(0, 2).join('/') : name;
  sizes.set(key, (sizes.get(key) ?? 0) + bytes.length);
}
let total = 0;
for (const [key, size] of sizes) {
  total += size;
  console.log(`${String(size).padStart(8)}  ${key}`);
}
console.log(`${String(total).padStart(8)}  total (${files.size} files) in ${root}`);
