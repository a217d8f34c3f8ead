import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Requests of one connection waiting for the answers before theirs, past
 * which the server stops reading that connection until one is answered.
 */
const MAX_WAITING = 16;

const waitingOn = new WeakMap<Socket, number>();

/**
 * Runs `handle` once every answer owed before this request's, on the same
 * connection, has gone out. A client may pipeline requests (RFC 9112
 * §9.3.2), and their answers must go out in order anyway; handling them as
 * they are read would park pipelined polls (which then outlive their
 * client, as Node reports a vanished client only to the answer in flight)
 * and build answers nobody reads yet (a client that never reads could make
 * the server hold any number of them). Waiting requests cost their request
 * objects only, and past MAX_WAITING the server stops reading the
 * connection; if the connection closes first, they are never handled.
 */
export function inTurn(req: IncomingMessage, res: ServerResponse, handle: () => void): void {
  // Node gives the connection to an answer as soon as the answers before it are out.
  if (res.socket) return handle();
  const socket = req.socket;
  const waiting = (waitingOn.get(socket) ?? 0) + 1;
  waitingOn.set(socket, waiting);
  if (waiting === MAX_WAITING) socket.pause();
  res.once('socket', () => {
    const left = waitingOn.get(socket)! - 1;
    waitingOn.set(socket, left);
    if (left === MAX_WAITING - 1) socket.resume();
    // Not from inside Node's finishing of the answer before, which is where this event comes from.
    process.nextTick(handle);
  });
}
