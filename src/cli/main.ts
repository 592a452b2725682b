import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { describeError, OcikitError } from '../errors.js';
import { commands } from './commands/index.js';
import { ownVersion } from './version.js';

/** Exit codes: 0 ok, 1 a check failed, 2 usage error or unreadable input. */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  let exitCode = 0;
  const cli: Argv = yargs(argv)
    .scriptName('ocikit')
    .usage('$0 <command> [options]\n\nREF: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], or a path (format detected); TAG may be @sha256:…')
    .option('debug', { type: 'boolean', describe: 'show stack traces', hidden: true })
    .strict()
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .help()
    // Read only when asked: every other run would pay for a file read it does not use.
    .version('version', 'show ocikit\'s version number', argv.includes('--version') ? ownVersion() : '')
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .exitProcess(false)
    .fail((message, err) => {
      // yargs re-throws what an option's coerce threw as its own YError, with the message kept.
      if (err?.name === 'YError') throw new OcikitError(err.message);
      throw err ?? new OcikitError(message ?? 'usage error');
    });
  for (const command of commands) cli.command(command);
  try {
    const result = await cli.parseAsync();
    const code = (result as { exitCode?: number }).exitCode;
    if (typeof code === 'number') exitCode = code;
    if (process.exitCode !== undefined && process.exitCode !== 0) exitCode = Number(process.exitCode);
  } catch (err) {
    exitCode = err instanceof OcikitError ? err.exitCode : 2;
    const internal = !(err instanceof OcikitError) && !(err as NodeJS.ErrnoException)?.code;
    process.stderr.write(`ocikit: ${internal ? 'internal error: ' : ''}${describeError(err)}\n`);
    if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  }
  return exitCode;
}

// A rejection nobody awaited (a bug, but also a background read gone wrong) still ends the process
// with the CLI's contract: one line, exit 2, no stack. Writes are safe at any exit, as after a kill.
const lastResort = (err: unknown) => {
  if (isClosedPipe(err)) quitOnClosedPipe();
  process.stderr.write(`ocikit: internal error: ${describeError(err).split('\n')[0]}\n`);
  if (process.argv.includes('--debug') && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(2);
};
// A reader that stops early (`| head -1`) is no failure: stop writing and exit quietly, as other CLIs do.
const isClosedPipe = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
const quitOnClosedPipe = () => process.exit(Number(process.exitCode ?? 0));
process.stdout.on('error', (err) => (isClosedPipe(err) ? quitOnClosedPipe() : lastResort(err)));
process.on('unhandledRejection', lastResort);
process.on('uncaughtException', lastResort);

// A command whose work stopped on a promise nothing will settle would otherwise end with exit 0 and no word.
let finished = false;
process.on('beforeExit', () => {
  if (finished) return;
  finished = true;
  process.stderr.write('ocikit: internal error: the command stopped before it finished\n');
  process.exit(2);
});

void main(hideBin(process.argv)).then((code) => {
  finished = true;
  process.exitCode = code;
});
