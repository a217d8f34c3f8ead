import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

/** How far a SQLite database had got, as its mark last said. */
export interface Mark {
  /** The database's epoch when the mark was written. */
  epoch: string;
  /** Messages the database had ever taken then: the sum of its rooms' heads. */
  count: number;
}

/**
 * Every record covers at least this many bytes, so that a record never
 * leaves a longer predecessor's tail before its own newline (what follows
 * the first newline is never read).
 */
const RECORD_BYTES = 128;
/** A mark is one short line; more than this is not a mark. */
const READ_BYTES = 4096;

/** The check of a record: a torn or edited one fails it, and is then not believed. */
function check(epoch: string, count: number): number {
  return crc32(`${epoch}\n${count}`);
}

/** The record for `mark`: one JSON line, padded with spaces to at least RECORD_BYTES. */
function encode({ epoch, count }: Mark): Buffer {
  const line = `${JSON.stringify({ epoch, count, check: check(epoch, count) })}\n`;
  const record = Buffer.alloc(Math.max(RECORD_BYTES, Buffer.byteLength(line)), ' ');
  record.write(line);
  return record;
}

/** The mark in `bytes`, or undefined when they hold none that passes its check. */
function decode(bytes: Buffer): Mark | undefined {
  const end = bytes.indexOf('\n');
  if (end < 0) return undefined;
  try {
    const { epoch, count, check: sum } = JSON.parse(bytes.subarray(0, end).toString('utf8')) as Record<string, unknown>;
    if (typeof epoch !== 'string' || !Number.isSafeInteger(count) || sum !== check(epoch, count as number)) return undefined;
    return { epoch, count: count as number };
  } catch {
    return undefined;
  }
}

/**
 * The file beside a SQLite database (`<database>-mark`, as SQLite keeps
 * `<database>-wal`) that says how many messages the database had taken, so
 * that a database that went back in time (replaced by an older copy, rooms
 * deleted by hand) is noticed when it is opened: the count of a database
 * only grows while a server runs it.
 *
 * It is written after each commit, never before, and never synced: it can
 * lag the database (after a crash or power loss) but never lead it, which
 * can only miss a database that went back, never accuse one that did not.
 * Each write puts one whole record at offset 0 and the file is never
 * truncated, so a crash cannot leave it empty or cut short; a record torn
 * some other way fails its check and counts as missing.
 */
export class SqliteMark {
  private constructor(
    /** The mark file's path. */
    readonly path: string,
    private readonly fd: number,
    /** What the file said when opened; undefined when it was missing or unreadable. */
    readonly found: Mark | undefined,
  ) {}

  /** Opens (or creates) the mark of the database at `databasePath`; throws the file system's error when it cannot be read and written. */
  static open(databasePath: string): SqliteMark {
    const path = `${databasePath}-mark`;
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      const bytes = Buffer.alloc(READ_BYTES);
      return new SqliteMark(path, fd, decode(bytes.subarray(0, readSync(fd, bytes, 0, READ_BYTES, 0))));
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Records `mark` in place of the previous one; throws the file system's error. */
  write(mark: Mark): void {
    const record = encode(mark);
    writeSync(this.fd, record, 0, record.length, 0);
  }

  close(): void {
    closeSync(this.fd);
  }
}
