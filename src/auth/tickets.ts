import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { nanoid } from 'nanoid';
import type { Caller } from '../core/access.js';
import { ChatError } from '../core/errors.js';
import { callerOfClaims, MAX_TOKEN_LENGTH, STREAM_TICKET_AUDIENCE } from './tokens.js';

/** How long a ticket may wait to be used, in ms (protocol "Streams": "valid 60 s"). */
export const TICKET_LIFETIME_MS = 60_000;

/** A ticket as `POST /api/stream-tickets` answers it. */
export interface Ticket {
  ticket: string;
  /** When it stops being accepted, in ms since the Unix epoch. */
  expiresAt: number;
}

/**
 * Marks a ticket's id used; throws when it was used before. The marks must
 * outlive the tickets (TICKET_LIFETIME_MS) and be shared by every instance
 * a ticket may be redeemed on.
 */
export type SpendTicket = (id: string) => Promise<void>;

/**
 * Stream tickets (protocol "Streams"): a browser's `EventSource` cannot send
 * `Authorization`, so a signed-in page trades its token for a ticket and puts
 * that in the stream's URL, where proxies and logs may see it. A ticket is
 * therefore short-lived and single-use: a JWT signed with the deployment's
 * secret, its audience `STREAM_TICKET_AUDIENCE` (refused as a token, so that
 * a ticket seen in a log opens nothing else), naming the token's user and
 * rooms, expiring after TICKET_LIFETIME_MS or with the token, whichever
 * comes first, and spent by its `jti` when redeemed.
 */
export class StreamTickets {
  private readonly now: () => number;

  constructor(
    private readonly secret: Uint8Array,
    private readonly spend: SpendTicket,
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
  }

  /** A ticket for `caller`, who signed in with a token. */
  async issue(caller: Caller): Promise<Ticket> {
    const expiresAt = Math.min(caller.expiresAt, Math.floor((this.now() + TICKET_LIFETIME_MS) / 1000) * 1000);
    const claims: Record<string, unknown> = { name: caller.name, guest: caller.guest };
    if (caller.rooms) claims.rooms = [...caller.rooms];
    const ticket = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(caller.id)
      .setAudience(STREAM_TICKET_AUDIENCE)
      .setJti(nanoid())
      .setExpirationTime(expiresAt / 1000)
      .sign(this.secret);
    return { ticket, expiresAt };
  }

  /**
   * The caller a ticket was issued to, spending it. Throws `invalid_ticket`
   * for a ticket that is malformed, not ours, expired or used before.
   */
  async redeem(ticket: string): Promise<Caller> {
    // A ticket carries its token's claims plus an audience and an id: a little longer than the longest token.
    if (ticket.length > 2 * MAX_TOKEN_LENGTH) throw invalid('it is too long');
    let payload;
    try {
      ({ payload } = await jwtVerify(ticket, this.secret, {
        algorithms: ['HS256'],
        audience: STREAM_TICKET_AUDIENCE,
        requiredClaims: ['sub', 'exp', 'jti'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      throw invalid(err instanceof joseErrors.JWTExpired ? 'it has expired (a ticket is valid 60 s); get a new one' : 'it is not a ticket of this server');
    }
    let caller: Caller;
    try {
      caller = callerOfClaims(payload);
    } catch {
      throw invalid('it is not a ticket of this server');
    }
    try {
      await this.spend(payload.jti!);
    } catch (err) {
      if (err instanceof ChatError && err.code === 'rate_limited') throw invalid('it was used already (a ticket opens one stream); get a new one');
      throw err;
    }
    return caller;
  }
}

function invalid(why: string): ChatError {
  return new ChatError('invalid_ticket', `invalid stream ticket: ${why}`);
}
