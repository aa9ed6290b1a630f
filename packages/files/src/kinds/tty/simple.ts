import { CONSOLE_INFO_ID, SERIAL_INFO_ID, VT_INFO_ID } from '@crtools/images/facts';

/**
 * The terminals opened again by path (the console, a virtual console, a serial line), by the
 * device's kind: their tty_info type and id, and what a message calls one.
 */
export const SIMPLE_TTY = {
  console: { type: 'CONSOLE', infoId: CONSOLE_INFO_ID, what: 'the console', one: 'a console' },
  vt: { type: 'VT', infoId: VT_INFO_ID, what: 'a virtual console', one: 'a virtual console' },
  serial: { type: 'SERIAL', infoId: SERIAL_INFO_ID, what: 'a serial line', one: 'a serial line' },
} as const;

export type SimpleTtyKind = keyof typeof SIMPLE_TTY;
export type SimpleTtyType = (typeof SIMPLE_TTY)[SimpleTtyKind]['type'];

/** What a message calls a terminal of tty_info type `type`. */
export function simpleTtyWhat(type: SimpleTtyType): string {
  return Object.values(SIMPLE_TTY).find((k) => k.type === type)!.what;
}
