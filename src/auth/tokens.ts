import { SignJWT, errors as joseErrors, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { LRUCache } from 'lru-cache';
import { ChatError } from '../core/errors.js';
import type { Caller } from '../core/access.js';
import { authorProblem, isPrivateRoom, USER_ID } from '../core/validate.js';
import type { User } from '../core/types.js';
import type { PublicKeys } from './keys.js';

/**
 * Longest token accepted, in characters. A guest token is about 250; one
 * carrying a `rooms` claim of a few dozen rooms stays well under this. The
 * cap bounds the work and the cache memory a made-up token can cost.
 */
export const MAX_TOKEN_LENGTH = 8192;

/**
 * Verified tokens remembered, so that a client repeating its poll with the
 * same token pays one map lookup instead of a signature check. Bounded both
 * in entries and in characters, whatever tokens clients send.
 */
const CACHE_ENTRIES = 20_000;
const CACHE_CHARACTERS = 16 * 1024 * 1024;

/**
 * Seconds of clock difference allowed on `exp` and `nbf`, for tokens minted
 * by an application on another machine whose clock is a little off.
 */
const CLOCK_TOLERANCE_S = 5;

/** A guest session as `POST /api/sessions` answers it. */
export interface Session {
  token: string;
  user: User;
  /** When the token expires, in ms since the Unix epoch. */
  expiresAt: number;
}

export interface TokenOptions {
  /** The deployment's HS256 key (at least 32 bytes, RFC 7518 §3.2). */
  secret: Uint8Array;
  /** An application's public keys, when the operator names some. */
  publicKeys?: PublicKeys;
  /** Lifetime of the tokens this server issues, in ms. */
  lifetimeMs: number;
  /** Current time in ms; tests may fix it. */
  now?: () => number;
}

/**
 * Issues and verifies the JWTs (RFC 7519) that name users: the deployment's
 * own (HS256, from guest sessions and refresh) and, when the operator
 * configures public keys, those an application mints (RS256, ES256, EdDSA).
 * The signature, `alg`, `exp` and `nbf` are checked by `jose`; this class
 * adds only the protocol's claim rules. Every way a token can be wrong is
 * the one error `invalid_token`, whose message says which.
 */
export class Tokens {
  private readonly cache = new LRUCache<string, Caller>({
    max: CACHE_ENTRIES,
    maxSize: CACHE_CHARACTERS,
    sizeCalculation: (_caller, token) => token.length,
  });
  private readonly getKey: JWTVerifyGetKey;
  private readonly algorithms: string[];
  private readonly now: () => number;

  constructor(private readonly options: TokenOptions) {
    this.now = options.now ?? Date.now;
    const { secret, publicKeys } = options;
    this.algorithms = publicKeys ? ['HS256', ...publicKeys.algorithms] : ['HS256'];
    // The header names the algorithm, and only the matching kind of key is offered for it: an
    // HS256 token is checked against the secret alone, never against a public key (RFC 8725 §3.1).
    this.getKey = (header, token) => (header.alg === 'HS256' || !publicKeys ? secret : publicKeys.keyFor(header, token));
  }

  /**
   * A guest session's token for `user`, valid for the configured lifetime,
   * with no `rooms` claim. Its private claim `guest` tells it from tokens an
   * application minted with the same secret.
   */
  async issue(user: User): Promise<Session> {
    const expiresAt = Math.floor((this.now() + this.options.lifetimeMs) / 1000) * 1000;
    const token = await new SignJWT({ name: user.name, guest: true })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.id)
      .setIssuedAt(Math.floor(this.now() / 1000))
      .setExpirationTime(expiresAt / 1000)
      .sign(this.options.secret);
    return { token, user: { id: user.id, name: user.name }, expiresAt };
  }

  /**
   * The caller of a token verified before and not expired since, without
   * waiting: the hot path's way of skipping a promise.
   */
  known(token: string): Caller | undefined {
    const cached = this.cache.get(token);
    if (!cached || cached.expiresAt > this.now()) return cached;
    this.cache.delete(token);
    return undefined;
  }

  /**
   * The user a token names, with its `rooms` claim and expiry. Throws
   * ChatError `invalid_token` for a token that is too long, malformed,
   * unsigned (`alg: none`), signed with an algorithm or key not accepted,
   * expired, not yet valid, or missing `sub`, `name` or `exp`, or whose
   * claims break the protocol's rules.
   */
  async verify(token: string): Promise<Caller> {
    const known = this.known(token);
    if (known) return known;
    if (token.length > MAX_TOKEN_LENGTH) throw invalid(`token is longer than ${MAX_TOKEN_LENGTH} characters`);
    const options = { algorithms: this.algorithms, requiredClaims: ['sub', 'exp'], clockTolerance: CLOCK_TOLERANCE_S, currentDate: new Date(this.now()) };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.getKey, options));
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw invalid(reason(err));
      // Keys without ids, several of the token's algorithm (a rotation in progress): each is tried.
      payload = await this.verifyWithEach(token, err, options);
    }
    if (payload.aud === STREAM_TICKET_AUDIENCE) throw invalid('it is a stream ticket, which opens a stream (?ticket=) and is no token');
    const caller = callerOfClaims(payload);
    const ttl = caller.expiresAt - this.now();
    if (ttl > 0) this.cache.set(token, caller, { ttl });
    return caller;
  }

  private async verifyWithEach(token: string, keys: AsyncIterable<CryptoKey>, options: JWTVerifyOptions): Promise<JWTPayload> {
    let last: unknown;
    for await (const key of keys) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (err) {
        last = err;
        if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) break;
      }
    }
    throw invalid(reason(last));
  }
}

function invalid(why: string): ChatError {
  return new ChatError('invalid_token', `invalid token: ${why}`);
}

/** What went wrong, in words a client developer can act on, without echoing the token. */
function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'it has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return err.claim === 'nbf' ? 'it is not valid yet (nbf)' : `claim "${err.claim}" is missing or wrong`;
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'its algorithm is not accepted';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey) {
    return 'its signature does not match any accepted key';
  }
  if (err instanceof joseErrors.JOSEError) return 'it is not a well-formed signed JWT';
  // A key of the wrong kind for the header's algorithm, as WebCrypto reports it.
  return 'it cannot be checked with any accepted key';
}

/**
 * The audience of stream tickets (StreamTickets). A JWT for it is refused
 * as a token: a ticket is put in a URL, and must open one stream and nothing else.
 */
export const STREAM_TICKET_AUDIENCE = 'chat-stream-ticket';

/**
 * The caller a verified JWT's claims name, by the protocol's rules for the
 * claims past what jose checks. Throws `invalid_token` saying which rule.
 */
export function callerOfClaims(payload: JWTPayload): Caller {
  const { sub, name, rooms, exp } = payload;
  if (typeof sub !== 'string' || !USER_ID.test(sub)) throw invalid('"sub" must be a user id of 1-64 characters of A-Z, a-z, 0-9, "_" or "-"');
  if (typeof name !== 'string') throw invalid('"name" is missing');
  const problem = authorProblem(name);
  if (problem) throw invalid(`"name" ${problem}`);
  let granted: ReadonlySet<string> | undefined;
  if (rooms !== undefined) {
    // Direct-message rooms are the server's to manage (their names are keyed by its secret).
    if (!Array.isArray(rooms) || !rooms.every((room) => typeof room === 'string' && room.startsWith('p_') && isPrivateRoom(room))) {
      throw invalid('"rooms" must be a list of private room names starting with p_');
    }
    granted = new Set(rooms as string[]);
  }
  return { id: sub, name, rooms: granted, expiresAt: exp! * 1000, guest: payload.guest === true };
}
