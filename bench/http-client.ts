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
