import type { CommandModule } from 'yargs';
import { annotateCommand } from './annotate.js';
import { convertCommand, copyCommand } from './convert.js';
import { gcCommand } from './gc.js';
import { inspectCommand } from './inspect.js';
import { rebaseCommand } from './rebase.js';
import { lsCommand, tagCommand, untagCommand } from './tag.js';
import { bundleCommand, unpackCommand } from './unpack.js';
import { verifyCommand } from './verify.js';
// Each command module adds its line here.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: Array<CommandModule<any, any>> = [
  inspectCommand,
  lsCommand,
  tagCommand,
  untagCommand,
  convertCommand,
  copyCommand,
  gcCommand,
  rebaseCommand,
  annotateCommand,
  verifyCommand,
  unpackCommand,
  bundleCommand,
];
