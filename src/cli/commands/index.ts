import type { CommandModule } from 'yargs';
import { convertCommand, copyCommand } from './convert.js';
import { inspectCommand } from './inspect.js';
import { lsCommand, tagCommand, untagCommand } from './tag.js';
// Each command module adds its line here.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: Array<CommandModule<any, any>> = [
  inspectCommand,
  lsCommand,
  tagCommand,
  untagCommand,
  convertCommand,
  copyCommand,
];
