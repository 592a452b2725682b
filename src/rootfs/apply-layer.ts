/**
 * One layer's tar stream into a root filesystem: node-tar's streaming Parser reads the entries, and each is
 * applied in order before the parser is fed further, so memory stays at a chunk or two whatever the layer.
 */
import type { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { OcikitError } from '../errors.js';
import type { RootfsWriter } from './apply-entry.js';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

export async function applyLayer(tar: Readable, writer: RootfsWriter, where: string): Promise<void> {
  writer.startLayer();
  const parser = new Parser({ strict: true });
  const queue: ReadEntry[] = [];
  let failure: unknown;
  let failed: () => void = () => undefined;
  const failedOnce = new Promise<void>((resolve) => (failed = resolve));
  const fail = (err: unknown) => {
    failure ??= err;
    failed();
    signal();
  };
  let wake: (() => void) | undefined;
  const signal = () => {
    wake?.();
    wake = undefined;
  };
  const waitForSignal = () => new Promise<void>((resolve) => (wake = resolve));
  parser.on('entry', (entry: ReadEntry) => {
    queue.push(entry);
    signal();
  });
  parser.on('error', (err: unknown) => fail(new OcikitError(`${where}: ${(err as Error).message}`, { exitCode: 1 })));
  let ended = false;
  parser.on('end', () => {
    ended = true;
    signal();
  });

  // The applier takes entries one by one; the feeder gives the parser more only when none are waiting.
  let current: ReadEntry | undefined;
  const apply = (async () => {
    for (;;) {
      if (failure) return;
      const entry = queue.shift();
      if (!entry) {
        if (ended) return;
        await waitForSignal();
        continue;
      }
      signal();
      current = entry;
      try {
        if (!FILE_TYPES.has(entry.type)) entry.resume();
        await writer.apply(entry, entry, where);
        entry.resume(); // what apply did not read (a whiteout's body): the parser moves on at the entry's end
      } catch (err) {
        entry.resume();
        fail(err);
        return;
      }
    }
  })();

  try {
    for await (const chunk of tar) {
      if (failure) break;
      if (!parser.write(chunk as Buffer)) await Promise.race([new Promise<void>((resolve) => parser.once('drain', resolve)), failedOnce]);
      while (queue.length > 0 && !failure) await waitForSignal();
    }
    if (!failure) parser.end();
  } catch (err) {
    fail(err);
    current?.end(); // an entry waiting for bytes that will not come: let the applier see the failure
  }
  await apply;
  if (failure) {
    for (const entry of queue) entry.resume();
    tar.destroy();
    throw failure;
  }
}
