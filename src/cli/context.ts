import { openStore, openWriter } from '../store/open.js';
import { parseReference, type Reference } from '../store/reference.js';
import type { Store, StoreWriter } from '../store/store.js';

/** Commands set this to report their outcome without throwing. */
export function setExit(code: 0 | 1 | 2): void {
  process.exitCode = Math.max(Number(process.exitCode ?? 0), code);
}

export async function withStore<T>(text: string, fn: (store: Store, ref: Reference) => Promise<T>): Promise<T> {
  const ref = parseReference(text);
  const store = await openStore(ref);
  try {
    return await fn(store, ref);
  } finally {
    await store.close();
  }
}

/**
 * Runs a change through a writer: committed by `fn`, aborted on any error or on Ctrl-C, so a failed
 * or interrupted command leaves the target as it was.
 */
export async function withWriter<T>(
  dest: Reference, source: Store, options: { wait?: boolean }, fn: (writer: StoreWriter) => Promise<T>,
): Promise<T> {
  const writer = await openWriter(dest, { base: source, wait: options.wait });
  const onSignal = (signal: NodeJS.Signals) => {
    void writer.abort().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(writer);
  } catch (err) {
    await writer.abort();
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

