import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Chat } from '../core/chat.js';
import type { Poll, WakeProgress } from '../core/poll-hub.js';

/**
 * Cancels a held poll or sync when its client goes away before the answer,
 * and counts how long it had been held (`chat_poll_abandoned_seconds`):
 * something on the path that cuts held requests at T (a proxy's read
 * timeout) shows as a peak at T, and the operator can lower the hold below it.
 */
export function cancelWhenGone(chat: Chat, req: IncomingMessage, res: ServerResponse, held: Poll): void {
  const since = performance.now();
  res.on('close', () => {
    if (!res.writableFinished) chat.abandoned((performance.now() - since) / 1000);
    held.cancel();
  });
  // A client gone before the listener was attached would never say so.
  if (req.socket.destroyed) held.cancel();
}

/**
 * Reads nothing more from an answered client until the wake-up that answered
 * it is over: its next poll then waits in the kernel rather than being parsed
 * in between the slices of the wake-up. A socket Node itself has paused (for
 * its own flow control) is left to Node.
 */
export function holdReading(socket: Socket, progress: WakeProgress): void {
  if (socket.isPaused()) return;
  socket.pause();
  progress.whenDone(() => socket.resume());
}
