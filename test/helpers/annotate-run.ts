/** The annotate library entry point driven in place as the CLI drives it: a writer, aborted on failure. */
import { annotate, type AnnotateOptions, type AnnotateResult } from '../../src/ops/annotate.js';
import { openStore, openWriter } from '../../src/store/open.js';
import { parseReference } from '../../src/store/reference.js';

export async function annotateRef(text: string, options: AnnotateOptions): Promise<AnnotateResult> {
  const ref = parseReference(text);
  const store = await openStore(ref);
  if (options.dryRun) return annotate(store, undefined, { selector: ref.selector, ...options });
  const writer = await openWriter({ ...ref, selector: undefined }, { base: store });
  try {
    return await annotate(store, writer, { selector: ref.selector, ...options });
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
