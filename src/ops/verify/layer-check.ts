/**
 * Streaming checks of an uncompressed layer tar: headers are parsed as the bytes go by, content is
 * skipped by arithmetic and never kept, so memory stays flat whatever the layer size. It runs in the
 * hashing threads too (src/hash/worker.ts), as an ordinary import.
 */

/** A problem found in the tar stream; `rule` is a RuleId (kept a string so this code stays standalone). */
export interface TarIssue {
  rule: string;
  message: string;
}

export interface TarReport {
  entries: number;
  issues: TarIssue[];
  /** Issues beyond the cap, counted but not listed. */
  dropped: number;
}

export interface TarChecker {
  push(chunk: Uint8Array): void;
  end(): TarReport;
}

export function createTarChecker(maxIssues = 50): TarChecker {
  const BLOCK = 512;
  const MAX_META = 1024 * 1024;
  const HEADER_ONLY = '123456';
  const header = new Uint8Array(BLOCK);
  const utf8 = new TextDecoder('utf-8');
  // WHATWG's latin1 is windows-1252: still one distinct code point per byte, so its strings key names
  // by their exact bytes (a UTF-8 decode maps every invalid byte to U+FFFD, making distinct names equal).
  const latin1 = new TextDecoder('latin1');
  const names = new Set<string>();
  const issues: TarIssue[] = [];
  let dropped = 0;
  let entries = 0;
  let mode: 'header' | 'sparse' | 'skip' | 'meta' | 'end' | 'dead' = 'header';
  let filled = 0; // bytes of `header` (or of `meta`) collected so far
  let skip = 0; // bytes left to skip in 'skip' mode
  let padding = 0; // how many of those are block padding after an entry's content
  let entryPending = false; // an extended header was read; its entry has not come yet
  let meta: Uint8Array = new Uint8Array(0);
  let metaType = '';
  let metaPadding = 0;
  let pending: { path?: Uint8Array; linkpath?: Uint8Array; size?: number } = {};
  let current = ''; // the entry whose content is being skipped, for messages
  let offset = 0; // of the stream, for messages
  let sawEnd = false;
  let sawAnything = false;

  const report = (rule: string, message: string) => {
    if (issues.length < maxIssues) issues.push({ rule, message });
    else dropped++;
  };

  /** The bytes of a NUL-terminated field, copied (the header buffer is reused). */
  const cString = (bytes: Uint8Array, start: number, end: number) => {
    let stop = start;
    while (stop < end && bytes[stop] !== 0) stop++;
    return bytes.slice(start, stop);
  };

  const number = (start: number, end: number): number | undefined => {
    if ((header[start]! & 0x80) !== 0) {
      let value = 0;
      for (let i = start; i < end; i++) value = value * 256 + (i === start ? header[i]! & 0x7f : header[i]!);
      return Number.isSafeInteger(value) ? value : undefined;
    }
    const text = latin1.decode(header.subarray(start, end)).replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
    if (text === '') return 0;
    return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
  };

  const checksumOk = () => {
    const stored = number(148, 156);
    let unsigned = 0;
    let signed = 0;
    for (let i = 0; i < BLOCK; i++) {
      const b = i >= 148 && i < 156 ? 0x20 : header[i]!;
      unsigned += b;
      signed += b > 127 ? b - 256 : b;
    }
    return stored === unsigned || stored === signed;
  };

  const isZero = (bytes: Uint8Array, start = 0, end = bytes.length) => {
    for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
    return true;
  };

  const checkName = (bytes: Uint8Array, typeflag: string, size: number, linkBytes: Uint8Array) => {
    const raw = latin1.decode(bytes);
    const text = utf8.decode(bytes); // for messages only; its '/' sit where raw's do
    const shown = JSON.stringify(text);
    if (raw.startsWith('/')) report('layer-tar-absolute-path', `entry ${shown} has an absolute path`);
    const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
    if (segments.includes('..')) report('layer-tar-path-traversal', `entry ${shown} has a ".." path segment`);
    if (typeflag === '1' && latin1.decode(linkBytes).split('/').includes('..')) {
      report('layer-tar-path-traversal', `hardlink ${shown} points to ${JSON.stringify(utf8.decode(linkBytes))}, which has a ".." segment`);
    }
    const name = segments.join('/');
    if (name === '') return;
    if (names.has(name)) report('layer-tar-duplicate-path', `path ${JSON.stringify(text.split('/').filter((s) => s !== '' && s !== '.').join('/'))} occurs more than once`);
    names.add(name);
    const base = segments[segments.length - 1]!;
    if (!base.startsWith('.wh.')) return;
    if (base === '.wh.') report('layer-whiteout-bare', `entry ${shown} is a whiteout that names nothing`);
    else if (base.startsWith('.wh..wh.') && base !== '.wh..wh..opq') return; // aufs bookkeeping, not a whiteout
    else if ((typeflag !== '0' && typeflag !== '\0') || size !== 0) {
      report('layer-whiteout-invalid', `whiteout ${shown} is not an empty regular file (type ${JSON.stringify(typeflag)}, ${size} bytes)`);
    }
  };

  const applyMeta = () => {
    if (metaType === 'L') pending.path = cString(meta, 0, meta.length);
    else if (metaType === 'K') pending.linkpath = cString(meta, 0, meta.length);
    else if (metaType === 'x') {
      // Records are "<length> <key>=<value>\n" where length counts bytes of the whole record.
      let i = 0;
      while (i < meta.length && meta[i] !== 0) {
        let space = i;
        while (space < meta.length && meta[space] !== 0x20) space++;
        const length = Number(latin1.decode(meta.subarray(i, space)));
        if (space >= meta.length || !Number.isSafeInteger(length) || length <= space - i + 1 || i + length > meta.length) {
          report('layer-tar-invalid', `malformed PAX record before the entry at byte ${offset}`);
          mode = 'dead';
          return;
        }
        const record = meta.subarray(space + 1, i + length - 1);
        const eq = record.indexOf(0x3d);
        const key = latin1.decode(record.subarray(0, eq));
        const value = record.slice(eq + 1);
        if (key === 'path') pending.path = value;
        else if (key === 'linkpath') pending.linkpath = value;
        else if (key === 'size' && /^\d+$/.test(latin1.decode(value))) pending.size = Number(latin1.decode(value));
        i += length;
      }
    }
  };

  const onHeader = () => {
    const at = offset - BLOCK;
    if (isZero(header)) {
      mode = 'end';
      sawEnd = true;
      return;
    }
    if (!checksumOk()) {
      report('layer-tar-invalid', entries === 0 ? 'not a tar archive (the first header has a bad checksum)' : `bad header checksum at byte ${at} after entry ${JSON.stringify(current)}`);
      mode = 'dead';
      return;
    }
    const typeflag = String.fromCharCode(header[156]!);
    const size = number(124, 136);
    if (size === undefined) {
      report('layer-tar-invalid', `invalid size field in the header at byte ${at}`);
      mode = 'dead';
      return;
    }
    const ustar = latin1.decode(header.subarray(257, 263)) === 'ustar\0';
    const prefix = ustar ? cString(header, 345, 500) : new Uint8Array(0);
    const rawName = prefix.length ? new Uint8Array([...prefix, 0x2f, ...cString(header, 0, 100)]) : cString(header, 0, 100);
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META) {
        report('layer-tar-invalid', `extended header at byte ${at} is ${size} bytes, over the ${MAX_META}-byte limit`);
        mode = 'dead';
        return;
      }
      metaType = typeflag;
      meta = new Uint8Array(size);
      metaPadding = (BLOCK - (size % BLOCK)) % BLOCK;
      filled = 0;
      mode = 'meta';
      return;
    }
    const name = pending.path ?? rawName;
    const linkname = pending.linkpath ?? cString(header, 157, 257);
    // For a GNU sparse file ('S') the size field counts the data stored, not the file's realsize.
    const contentSize = HEADER_ONLY.includes(typeflag) ? 0 : (pending.size ?? size);
    pending = {};
    entryPending = false;
    entries++;
    current = utf8.decode(name);
    checkName(name, typeflag, contentSize, linkname);
    skip = Math.ceil(contentSize / BLOCK) * BLOCK;
    padding = skip - contentSize;
    // Old GNU sparse headers that overflow their 4 map slots continue in 512-byte extension blocks,
    // each flagging (byte 504) whether another follows, before the entry's data.
    if (typeflag === 'S' && header[482] !== 0) mode = 'sparse';
    else mode = skip > 0 ? 'skip' : 'header';
  };

  const onSparseBlock = () => {
    if (header[504] === 0) mode = skip > 0 ? 'skip' : 'header';
  };

  const push = (chunk: Uint8Array) => {
    let i = 0;
    if (chunk.length > 0) sawAnything = true;
    while (i < chunk.length && mode !== 'dead') {
      if (mode === 'skip') {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        offset += n;
        if (skip === 0) mode = 'header';
      } else if (mode === 'header' || mode === 'sparse') {
        const n = Math.min(BLOCK - filled, chunk.length - i);
        header.set(chunk.subarray(i, i + n), filled);
        filled += n;
        i += n;
        offset += n;
        if (filled === BLOCK) {
          filled = 0;
          if (mode === 'header') onHeader();
          else onSparseBlock();
        }
      } else if (mode === 'meta') {
        const n = Math.min(meta.length - filled, chunk.length - i);
        meta.set(chunk.subarray(i, i + n), filled);
        filled += n;
        i += n;
        offset += n;
        if (filled === meta.length) {
          if (metaType !== 'g') applyMeta();
          skip = metaPadding;
          padding = 0;
          entryPending = true;
          if (mode === 'meta') mode = skip > 0 ? 'skip' : 'header';
          filled = 0;
        }
      } else {
        // After the end-of-archive block only zero padding may follow.
        if (!isZero(chunk, i)) {
          let at = i;
          while (chunk[at] === 0) at++;
          report('layer-tar-trailing-garbage', `non-zero data at byte ${offset + at - i}, after the end-of-archive marker`);
          mode = 'dead';
        }
        offset += chunk.length - i;
        i = chunk.length;
      }
    }
  };

  const end = (): TarReport => {
    if (mode === 'skip' && skip <= padding && !entryPending) {
      report('layer-tar-no-end-marker', `the tar ends after the content of entry ${JSON.stringify(current)}, without padding or an end-of-archive marker`);
    } else if (mode === 'skip' || mode === 'meta' || mode === 'sparse' || (mode === 'header' && filled > 0)) {
      report('layer-tar-truncated', `the tar ends inside ${mode === 'header' ? 'a header' : `entry ${JSON.stringify(current)}`} at byte ${offset}`);
    } else if (mode === 'header' && entryPending) {
      report('layer-tar-truncated', `the tar ends after an extended header, before its entry, at byte ${offset}`);
    } else if (mode === 'header' && !sawEnd) {
      if (!sawAnything) report('layer-tar-truncated', 'the layer is empty: not even an end-of-archive marker');
      else report('layer-tar-no-end-marker', `the tar ends at byte ${offset} without an end-of-archive marker`);
    }
    return { entries, issues, dropped };
  };

  return { push, end };
}
