import type { PresenceSnapshot, User } from '../core/types.js';
import { Script } from './redis-scripts.js';
import type { RedisClient } from './redis-connect.js';
import type { RoomKeys } from './redis-store.js';

/**
 * What both presence scripts share. A list (online, typing) is three keys
 * of the room, always changed together:
 * - by time: zset user id → until (ms), to find the ended entries and the
 *   next expiry without looking at the live ones;
 * - by id: zset user id → 0, because members of equal score are kept in
 *   byte order, which for ids (`[A-Za-z0-9_-]`, ASCII) is code unit order:
 *   the first `limit` ids come from ZRANGE in O(log n + limit), where
 *   sorting in Lua would cost O(n log n) per read and compare with
 *   strcoll, i.e. in Redis's locale, not code unit order;
 * - names: hash user id → name.
 *
 * `prune` takes at most CHUNK ids at a time so that `unpack` stays far
 * below Lua's stack limit however many users left at once. Redis deletes a
 * zset or hash when its last member goes, so an empty list leaves no key.
 *
 * `expire` gives the list's keys one expiry, at its latest entry's end, so
 * that a room nobody reads or writes again still frees everything. It is
 * relative (PEXPIRE until - now) rather than PEXPIREAT until: `now` is the
 * caller's clock, which Redis's may not match (and tests pass times near
 * 1970, which PEXPIREAT would take as past and delete at once). Only writes
 * call it: pruning removes entries below the latest one, never the latest
 * alone, so after a read the expiry set by the last write still holds.
 */
const PRESENCE_LUA = `
local CHUNK = 1000
local function prune(byTime, byId, names, now)
  while true do
    local ended = redis.call('ZRANGEBYSCORE', byTime, '-inf', now, 'LIMIT', 0, CHUNK)
    if #ended == 0 then return end
    redis.call('ZREM', byTime, unpack(ended))
    redis.call('ZREM', byId, unpack(ended))
    redis.call('HDEL', names, unpack(ended))
  end
end
local function expire(byTime, byId, names, now)
  local last = redis.call('ZRANGE', byTime, -1, -1, 'WITHSCORES')[2]
  if not last then return end
  local ttl = string.format('%d', math.max(1, math.ceil(tonumber(last) - tonumber(now))))
  for _, key in ipairs({byTime, byId, names}) do redis.call('PEXPIRE', key, ttl) end
end
`;

/**
 * Sets or ends one user's entry in one list, atomically with the check of
 * whether readers see a difference (or an earlier end): only then is the
 * room signalled, so that renewing a live entry (every poll does) wakes no
 * one.
 *
 * KEYS: the list's by time, by id, names; the other list's by time, by id, names; signal
 * ARGV: user id, name, until, now
 */
const SET = new Script(`${PRESENCE_LUA}
local id, name, untilMs, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
prune(KEYS[1], KEYS[2], KEYS[3], now)
prune(KEYS[4], KEYS[5], KEYS[6], now)
local before = redis.call('ZSCORE', KEYS[1], id)
local live = before ~= false
local changed = false
if tonumber(untilMs) > tonumber(now) then
  local kept = live and redis.call('HGET', KEYS[3], id)
  redis.call('ZADD', KEYS[1], untilMs, id)
  if not live then redis.call('ZADD', KEYS[2], 0, id) end
  if kept ~= name then redis.call('HSET', KEYS[3], id, name) end
  -- An earlier end changes when readers must look again (their next expiry).
  changed = kept ~= name or tonumber(untilMs) < tonumber(before)
elseif live then
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  changed = true
end
expire(KEYS[1], KEYS[2], KEYS[3], now)
if changed then redis.call('SPUBLISH', KEYS[7], 'presence') end
`);

/**
 * Reads both lists in one instant, after pruning them (so ended entries are
 * freed by reads too, and onlineCount counts live entries only).
 *
 * KEYS: online by time, by id, names; typing by time, by id, names
 * ARGV: now, limit
 * Returns {{id, name, …} online, online count, {id, name, …} typing, next expiry ('' for none)}.
 */
const READ = new Script(`${PRESENCE_LUA}
local now, limit = ARGV[1], tonumber(ARGV[2])
local reply, nextExpiry = {}, nil
for list = 0, 1 do
  local byTime, byId, names = KEYS[3 * list + 1], KEYS[3 * list + 2], KEYS[3 * list + 3]
  prune(byTime, byId, names, now)
  local users = {}
  local ids = limit > 0 and redis.call('ZRANGE', byId, 0, limit - 1) or {}
  if #ids > 0 then
    local kept = redis.call('HMGET', names, unpack(ids))
    for i, id in ipairs(ids) do
      users[2 * i - 1] = id
      users[2 * i] = kept[i] or ''
    end
  end
  table.insert(reply, users)
  if list == 0 then table.insert(reply, redis.call('ZCARD', byTime)) end
  local first = redis.call('ZRANGE', byTime, 0, 0, 'WITHSCORES')[2]
  if first and (not nextExpiry or tonumber(first) < tonumber(nextExpiry)) then nextExpiry = first end
end
table.insert(reply, nextExpiry or '')
return reply
`);

function toUsers(flat: string[]): User[] {
  const users: User[] = [];
  for (let i = 0; i < flat.length; i += 2) users.push({ id: flat[i]!, name: flat[i + 1]! });
  return users;
}

/**
 * Presence and typing entries for RedisStore, in keys tagged with the room
 * (see roomKeys), so that every process on the prefix reads the same lists
 * and a change wakes every process's polls on the room. Entries get no
 * durability of their own: one lost with Redis is written again by its
 * user's next poll (Store contract).
 */
export class RedisPresence {
  constructor(
    private readonly cmd: RedisClient,
    private readonly roomKeys: (room: string) => RoomKeys,
    /** Runs a command, turning a failure into StoreUnavailableError. */
    private readonly call: <T>(fn: () => Promise<T>) => Promise<T>,
  ) {}

  private lists(room: string): { online: string[]; typing: string[]; signal: string } {
    const keys = this.roomKeys(room);
    return {
      online: [keys.online, keys.onlineIds, keys.onlineNames],
      typing: [keys.typing, keys.typingIds, keys.typingNames],
      signal: keys.signal,
    };
  }

  async set(room: string, list: 'online' | 'typing', user: User, until: number, now: number): Promise<void> {
    const keys = this.lists(room);
    const [mine, other] = list === 'online' ? [keys.online, keys.typing] : [keys.typing, keys.online];
    await this.call(() => SET.run(this.cmd, [...mine, ...other, keys.signal], [user.id, user.name, until, now]));
  }

  async read(room: string, now: number, limit: number): Promise<PresenceSnapshot> {
    const { online, typing } = this.lists(room);
    const [onlineFlat, onlineCount, typingFlat, nextExpiry] = (await this.call(() =>
      READ.run(this.cmd, [...online, ...typing], [now, limit]),
    )) as [string[], number, string[], string];
    return {
      online: toUsers(onlineFlat),
      onlineCount,
      typing: toUsers(typingFlat),
      nextExpiry: nextExpiry === '' ? undefined : Number(nextExpiry),
    };
  }
}
