// Colour only when writing to a terminal, and never when NO_COLOR is set (no-color.org).
import type { Palette } from '../diagnostics/render.ts';
import { PLAIN } from '../diagnostics/render.ts';

function wantsColour(stream: NodeJS.WriteStream): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

const sgr = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;

export function paletteFor(stream: NodeJS.WriteStream): Palette {
  if (!wantsColour(stream)) return PLAIN;
  return { error: sgr('1;31'), warning: sgr('1;35'), hint: sgr('1;36'), location: sgr('1'), caret: sgr('1;32') };
}

