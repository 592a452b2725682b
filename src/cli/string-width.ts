/**
 * Stands in for the string-width package inside the CLI bundle: its module body builds Intl.Segmenter
 * objects and Unicode-property regexes at load time, about 10 ms of every start, only for help text,
 * which is ASCII here. Width of a string without ANSI escapes; wide characters count as one column.
 */
const ANSI = /\u001B\[[0-9;]*[A-Za-z]/g;

export default function stringWidth(text: string): number {
  return typeof text === 'string' ? text.replace(ANSI, '').length : 0;
}
