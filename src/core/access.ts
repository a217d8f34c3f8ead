import type { User } from './types.js';

/**
 * The signed-in user a request comes from, as a verified token names them
 * (protocol "Identity"). Requests without a token have no caller.
 */
export interface Caller extends User {
  /** The token's `rooms` claim: private rooms the application made the user a member of, without stored membership. */
  rooms: ReadonlySet<string> | undefined;
  /** When the token expires, in ms since the Unix epoch. */
  expiresAt: number;
  /** The token is a guest session's, issued by this server (POST /api/sessions or refresh). */
  guest: boolean;
}
