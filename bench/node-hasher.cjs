// A bare Node program that only hashes a layout's blobs on two cores: no CLI, no documents, a worker
// started at once and the blobs handed out largest first. bench/run.ts times it beside ocikit, so the
// share of a ratio that is Node's own start-up and worker boot shows as a number. It is not a strict
// floor: its main thread hashes synchronously, so on a few big blobs its split can be worse than ocikit's.
//   node bench/node-hasher.cjs LAYOUT
'use strict';
const { Worker } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');

const dir = `${process.argv[2]}/blobs/sha256`;
const files = fs.readdirSync(dir).map((name) => ({ path: `${dir}/${name}`, size: fs.statSync(`${dir}/${name}`).size }));
files.sort((a, b) => b.size - a.size);
const take = () => files.shift()?.path;

const hashFile = `(fs, crypto, buffer, path) => {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(path, 'r');
  for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
  fs.closeSync(fd);
  return hash.digest('hex');
}`;
const worker = new Worker(`const { parentPort } = require('node:worker_threads');
const hashFile = ${hashFile};
const buffer = Buffer.allocUnsafe(512 * 1024);
parentPort.on('message', (path) => parentPort.postMessage(hashFile(require('node:fs'), require('node:crypto'), buffer, path)));`, { eval: true });
const feed = () => {
  const path = take();
  if (path) worker.postMessage(path);
  else void worker.terminate();
};
worker.on('online', feed);
worker.on('message', feed);

const buffer = Buffer.allocUnsafe(512 * 1024);
const hashOnMain = eval(hashFile);
(function mainLane() {
  const path = take();
  if (!path) return;
  hashOnMain(fs, crypto, buffer, path);
  setImmediate(mainLane);
})();
