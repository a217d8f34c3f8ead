// A Server-Sent Events reader for tests: what an EventSource sees (events with
// their type, id and data), plus what it hides (comments, the retry field, the
// moment the server ends the stream), over a node:http connection of its own.
import http from 'node:http';

export interface SseEvent {
  event: string;
  /** The event's own id field, if it had one. */
  id: string | undefined;
  data: string;
}

export interface SseStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body as received, for a stream refused with a JSON error. */
  readonly text: string;
  readonly events: SseEvent[];
  readonly comments: string[];
  readonly retry: number | undefined;
  /** The id a reconnecting EventSource would send: the last id seen. */
  readonly lastEventId: string;
  /** Resolves with the first event at or after index `from` that `match` accepts. */
  next(match?: (event: SseEvent) => boolean, from?: number, timeoutMs?: number): Promise<SseEvent>;
  /** Resolves when the server ends the stream, or the connection breaks. */
  readonly ended: Promise<void>;
  /** Drops the connection, as a client going away does. */
  close(): void;
}

/**
 * Opens `path` (a GET with `Accept: text/event-stream` and `headers`) and
 * parses its events as WHATWG HTML §9.2 says, resolving once the headers
 * are in.
 */
export function openStream(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(baseUrl + path, { agent: false, headers: { Accept: 'text/event-stream', ...headers } });
    req.on('error', reject);
    req.on('response', (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const waiters = new Set<() => void>();
      let text = '';
      let pending = '';
      let retry: number | undefined;
      let lastEventId = '';
      let event = { event: '', id: undefined as string | undefined, data: [] as string[] };
      let idBuffer = '';
      const line = (l: string): void => {
        if (l === '') {
          // The id counts once its event is whole (§9.2.6): a stream cut in the middle of one resumes before it.
          lastEventId = idBuffer;
          if (event.data.length) events.push({ event: event.event || 'message', id: event.id, data: event.data.join('\n') });
          event = { event: '', id: undefined, data: [] };
          return;
        }
        if (l.startsWith(':')) return void comments.push(l.slice(1));
        const at = l.indexOf(':');
        const field = at < 0 ? l : l.slice(0, at);
        const value = at < 0 ? '' : l.slice(at + 1).replace(/^ /, '');
        if (field === 'event') event.event = value;
        else if (field === 'data') event.data.push(value);
        else if (field === 'id') idBuffer = event.id = value;
        else if (field === 'retry' && /^[0-9]+$/.test(value)) retry = Number(value);
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        pending += chunk;
        let at;
        while ((at = pending.indexOf('\n')) >= 0) {
          line(pending.slice(0, at));
          pending = pending.slice(at + 1);
        }
        for (const wake of waiters) wake();
      });
      const ended = new Promise<void>((done) => {
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      });
      void ended.then(() => {
        for (const wake of waiters) wake();
      });
      let over = false;
      void ended.then(() => (over = true));
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        get text() {
          return text;
        },
        events,
        comments,
        get retry() {
          return retry;
        },
        get lastEventId() {
          return lastEventId;
        },
        next(match = () => true, from = 0, timeoutMs = 10_000) {
          return new Promise((found, fail) => {
            const look = (): boolean => {
              const hit = events.slice(from).find(match);
              if (hit) found(hit);
              else if (over) fail(new Error(`the stream ended without the event; it had ${events.length}`));
              else return false;
              waiters.delete(check);
              clearTimeout(timer);
              return true;
            };
            const check = (): void => void look();
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no such event within ${timeoutMs} ms; ${events.length} events so far`));
            }, timeoutMs);
            waiters.add(check);
            look();
          });
        },
        ended,
        close: () => req.destroy(),
      });
    });
  });
}
