// How messages and notices look: `[room] author: text` for people, one JSON
// object per line with --json for programs. Notices always go to stderr so
// that stdout holds messages only.
import type { Options } from './args.js';

export interface Message {
  seq: number;
  author: string;
  text: string;
  [key: string]: unknown;
}

/** Prints one message on stdout; `withSeq` adds its seq (for `send`). */
export function printMessage(options: Options, room: string, message: Message, withSeq = false): void {
  if (options.json) {
    process.stdout.write(JSON.stringify({ ...message, room }) + '\n');
  } else {
    process.stdout.write(`[${room}] ${withSeq ? `#${message.seq} ` : ''}${message.author}: ${message.text}\n`);
  }
}

/** A line on stderr, prefixed "chat: ". */
export function notice(text: string): void {
  process.stderr.write(`chat: ${text}\n`);
}
