import { connect, type Socket } from 'node:net';

export interface Response {
  status: number;
  body: string;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;

/**
 * One keep-alive HTTP/1.1 connection that sends one request at a time and
 * reads only what the benchmark needs (status, Content-Length, body). Far
 * cheaper than node:http's client, so that with 10,000 connections the load
 * generator is not the side that limits the figures.
 */
export class Connection {
  private buffer: Buffer | null = null;
  private waiting?: { resolve(res: Response): void; reject(err: Error): void };

  private constructor(
    private readonly socket: Socket,
    private readonly host: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    const fail = (err: Error): void => {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static open(host: string, port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new Connection(socket, `${host}:${port}`));
      });
    });
  }

  /** `headers`: more header lines, each ending in CRLF. */
  request(method: 'GET' | 'POST', path: string, json?: string, headers = ''): Promise<Response> {
    if (this.waiting) return Promise.reject(new Error('a request is already in flight on this connection'));
    const head =
      json === undefined
        ? `${method} ${path} HTTP/1.1\r\nHost: ${this.host}\r\n${headers}\r\n`
        : `${method} ${path} HTTP/1.1\r\nHost: ${this.host}\r\n${headers}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`;
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(head);
    });
  }

  private read(chunk: Buffer): void {
    const buffer = (this.buffer = this.buffer ? Buffer.concat([this.buffer, chunk]) : chunk);
    const headerEnd = buffer.indexOf(HEADER_END);
    if (headerEnd < 0) return;
    const head = buffer.toString('latin1', 0, headerEnd);
    const length = Number(CONTENT_LENGTH.exec(head)?.[1] ?? NaN);
    if (Number.isNaN(length)) {
      this.socket.destroy(new Error(`answer without Content-Length: ${head.split('\r\n')[0]}`));
      return;
    }
    const bodyStart = headerEnd + HEADER_END.length;
    if (buffer.length < bodyStart + length) return;
    const response = { status: Number(head.slice(9, 12)), body: buffer.toString('utf8', bodyStart, bodyStart + length) };
    this.buffer = buffer.length > bodyStart + length ? buffer.subarray(bodyStart + length) : null;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve(response);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One Server-Sent Event as the benchmark reads it: its `id:` and its `data:` lines joined by `\n`. */
export interface ServerSentEvent {
  id: string;
  data: string;
}

/** What an EventStream reports; every callback runs on the socket's `data` handler, so a timestamp taken in it is the moment the event was parsed. */
export interface EventStreamHandlers {
  /** Every event, in the order the server sent them. */
  event(event: ServerSentEvent): void;
  /** Every comment line (`: …`), such as a heartbeat. */
  comment?(): void;
  /** The stream is over: the server ended it (error undefined), or the connection failed. */
  end?(error?: Error): void;
}

const CRLF = Buffer.from('\r\n');
const EVENT_END = Buffer.from('\n\n');
const CHUNKED = /\r\ntransfer-encoding:[ \t]*chunked/i;

/**
 * One `GET` held open for Server-Sent Events on a connection of its own: it
 * reads the head, takes the body apart if it is chunked (Node's default for
 * a stream) and splits the events at blank lines, as cheaply as
 * Connection, so that 10,000 of them in one process still parse faster than
 * a server writes. Only what the benchmark's servers send is understood:
 * fields end in `\n`, and `event:` and `retry:` are skipped.
 */
export class EventStream {
  private head: Buffer | null = Buffer.alloc(0);
  private chunked = false;
  /** Chunked framing: a size line not yet complete, and what is left of the chunk being read. */
  private raw: Buffer | null = null;
  private chunkLeft = 0;
  /** The CRLF that closes a chunk, or what of it has not come yet. */
  private crlfLeft = 0;
  /** Event bytes after the last blank line. */
  private text: Buffer | null = null;
  private ended = false;

  private constructor(
    private readonly socket: Socket,
    private readonly handlers: EventStreamHandlers,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish(new Error('connection closed')));
  }

  /** Connects and sends `GET path`; `headers`: more header lines, each ending in CRLF. */
  static open(host: string, port: number, path: string, handlers: EventStreamHandlers, headers = ''): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\n${headers}\r\n`);
        resolve(new EventStream(socket, handlers));
      });
    });
  }

  private read(chunk: Buffer): void {
    if (this.head) {
      const buffer = (this.head = Buffer.concat([this.head, chunk]));
      const headerEnd = buffer.indexOf(HEADER_END);
      if (headerEnd < 0) return;
      const head = buffer.toString('latin1', 0, headerEnd);
      if (head.slice(9, 12) !== '200') return void this.socket.destroy(new Error(`stream refused: ${buffer.toString('utf8').slice(0, 300)}`));
      this.chunked = CHUNKED.test(head);
      this.head = null;
      chunk = buffer.subarray(headerEnd + HEADER_END.length);
    }
    if (this.chunked) this.unchunk(chunk);
    else this.events(chunk);
  }

  /** Chunked transfer coding (RFC 9112 §7.1): `size\r\n`, the bytes, `\r\n`; size 0 ends the body. */
  private unchunk(chunk: Buffer): void {
    let buffer = this.raw ? Buffer.concat([this.raw, chunk]) : chunk;
    this.raw = null;
    while (buffer.length > 0) {
      if (this.chunkLeft > 0) {
        const take = Math.min(this.chunkLeft, buffer.length);
        this.events(buffer.subarray(0, take));
        this.chunkLeft -= take;
        buffer = buffer.subarray(take);
        if (this.chunkLeft === 0) this.crlfLeft = 2;
        continue;
      }
      if (this.crlfLeft > 0) {
        const take = Math.min(this.crlfLeft, buffer.length);
        this.crlfLeft -= take;
        buffer = buffer.subarray(take);
        continue;
      }
      const lineEnd = buffer.indexOf(CRLF);
      if (lineEnd < 0) {
        this.raw = buffer;
        return;
      }
      const size = parseInt(buffer.toString('latin1', 0, lineEnd), 16);
      if (size === 0) return this.finish();
      this.chunkLeft = size;
      buffer = buffer.subarray(lineEnd + 2);
    }
  }

  private events(bytes: Buffer): void {
    let buffer = this.text ? Buffer.concat([this.text, bytes]) : bytes;
    let end;
    while ((end = buffer.indexOf(EVENT_END)) >= 0) {
      this.parse(buffer.toString('utf8', 0, end));
      buffer = buffer.subarray(end + 2);
    }
    this.text = buffer.length > 0 ? buffer : null;
  }

  /** One event's lines (WHATWG HTML §9.2.6): `field: value`, or a comment starting with `:`. */
  private parse(block: string): void {
    let id = '';
    let data: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.handlers.comment?.();
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(line[colon + 1] === ' ' ? colon + 2 : colon + 1);
      if (field === 'id') id = value;
      else if (field === 'data') data = data === undefined ? value : `${data}\n${value}`;
    }
    if (data !== undefined) this.handlers.event({ id, data });
  }

  private finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers.end?.(error);
  }
}
