import { openStore, openWriter } from '../store/open.js';
import { parseReference, type Reference, type Selector } from '../store/reference.js';
import type { Store, StoreWriter } from '../store/store.js';

/** Commands set this to report their outcome without throwing. */
export function setExit(code: 0 | 1 | 2): void {
  process.exitCode = Math.max(Number(process.exitCode ?? 0), code);
}

/** Opens the store a parsed reference names for the length of `fn`. */
export async function withStore<T>(ref: Reference, fn: (store: Store, ref: Reference) => Promise<T>): Promise<T> {
  const store = await openStore(ref);
  try {
    return await fn(store, ref);
  } finally {
    await store.close();
  }
}

/** A store a command reads beside its main one (a base, a base layout), and what the reference selects in it. */
export interface OtherStore {
  store: Store;
  selector: Selector | undefined;
}

/** Runs `fn` with an opener for other stores (each reference parsed once); all of them are closed at the end. */
export async function withOtherStores<T>(fn: (open: (text: string) => Promise<OtherStore>) => Promise<T>): Promise<T> {
  const opened: Store[] = [];
  const open = async (text: string): Promise<OtherStore> => {
    const ref = parseReference(text);
    const store = await openStore(ref);
    opened.push(store);
    return { store, selector: ref.selector };
  };
  try {
    return await fn(open);
  } finally {
    await Promise.all(opened.map((s) => s.close()));
  }
}

/** The exit status a shell reports for a process ended by the signal (128 + its number). */
const SIGNAL_EXIT: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/**
 * Runs a change through a writer: committed by `fn`, aborted on any error or on Ctrl-C, so a failed
 * or interrupted command leaves the target as it was. A signal that arrives while the writer is being
 * opened (or queued for the lock) is acted on as soon as there is a writer to abort; one that arrives
 * during the commit lets the commit finish (the writer's abort waits for it).
 */
export async function withWriter<T>(
  dest: Reference, source: Store, options: { wait?: boolean; link?: boolean }, fn: (writer: StoreWriter) => Promise<T>,
): Promise<T> {
  const interrupt = new AbortController();
  let writer: StoreWriter | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) return;
    interrupt.abort(signal);
    if (writer) void leave(writer, signal);
  };
  const signals = Object.keys(SIGNAL_EXIT) as NodeJS.Signals[];
  for (const signal of signals) process.on(signal, onSignal);
  try {
    writer = await openWriter(dest, { base: source, wait: options.wait, link: options.link, signal: interrupt.signal });
    if (interrupt.signal.aborted) return await leave(writer, interrupt.signal.reason as NodeJS.Signals);
    return await fn(writer);
  } catch (err) {
    await writer?.abort();
    if (interrupt.signal.aborted) process.exit(SIGNAL_EXIT[interrupt.signal.reason as string] ?? 130);
    throw err;
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
  }
}

/**
 * Runs work that cleans up after itself when its signal aborts (an unpack removing its directory): on
 * Ctrl-C the work is told, and once it has unwound the process exits as one ended by the signal.
 */
export async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => interrupt.abort(signal);
  const signals = Object.keys(SIGNAL_EXIT) as NodeJS.Signals[];
  for (const signal of signals) process.on(signal, onSignal);
  try {
    return await fn(interrupt.signal);
  } catch (err) {
    if (interrupt.signal.aborted) process.exit(SIGNAL_EXIT[interrupt.signal.reason as string] ?? 130);
    throw err;
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
  }
}

/** Drops the pending change and exits as a process ended by the signal would. */
async function leave(writer: StoreWriter, signal: NodeJS.Signals): Promise<never> {
  await writer.abort().catch(() => undefined);
  process.exit(SIGNAL_EXIT[signal] ?? 130);
}
