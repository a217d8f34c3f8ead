import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-connect.js';

/** A Lua script run by its SHA1, sent in full only when the server does not have it (after a restart). */
export class Script {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: RedisClient, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      // NOSCRIPT means nothing ran, so sending the script itself cannot run it twice.
      if (!isNoScript(err)) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }

  /**
   * Runs the script, then WAIT for `replicas` replicas for at most
   * `timeoutMs`, in one pipeline: on a cluster a pipeline goes to the node
   * of its keys' slot, on one connection, and WAIT counts the replicas that
   * have every write this connection made so far, the script's included.
   * Resolves to the script's reply and that count; rejects with the
   * script's error, or WAIT's.
   */
  async runThenWait(redis: RedisClient, keys: readonly string[], args: readonly (string | number)[], replicas: number, timeoutMs: number): Promise<[unknown, number]> {
    const attempt = async (byHash: boolean): Promise<[unknown, number]> => {
      const pipeline = redis.pipeline();
      if (byHash) pipeline.evalsha(this.sha, keys.length, ...keys, ...args);
      else pipeline.eval(this.lua, keys.length, ...keys, ...args);
      const results = (await pipeline.wait(replicas, timeoutMs).exec()) ?? [];
      const [script, wait] = results as [[Error | null, unknown], [Error | null, unknown]];
      if (script[0]) throw script[0];
      if (wait[0]) throw wait[0];
      return [script[1], Number(wait[1])];
    };
    try {
      return await attempt(true);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return attempt(false);
    }
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Appends one message, atomically: the idempotency check, the next seq, the
 * stream entry (its ID is `<seq>-0`) with exact MAXLEN trimming, the room's
 * head and epoch, the clientMsgId index (trimmed with the stream) and the
 * change signal. A room's epoch is fixed when its first message is stored,
 * from the store epoch the caller passes.
 *
 * KEYS: meta (hash: epoch, head), log (stream), ids (zset clientMsgId → seq), signal (shard channel)
 * ARGV: store epoch, retention, id, author, text, ts, clientMsgId ('' for none), authorId ('' for none),
 *   and 'replicate' to make a write for a duplicate too (the room's epoch, unchanged), so that a WAIT
 *   after it covers the original, whichever connection stored that
 * Returns {1, epoch, seq} for a new message, {0, epoch, entryId, fields} for a duplicate.
 */
export const APPEND = new Script(`
local meta, log, ids, signal = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local retention = tonumber(ARGV[2])
local cmid = ARGV[7]
local state = redis.call('HMGET', meta, 'epoch', 'head')
local epoch = state[1] or ARGV[1]
if cmid ~= '' then
  local original = redis.call('ZSCORE', ids, cmid)
  if original then
    local found = redis.call('XRANGE', log, original, original)
    if #found > 0 then
      if ARGV[9] == 'replicate' then redis.call('HSET', meta, 'epoch', epoch) end
      return {0, epoch, found[1][1], found[1][2]}
    end
  end
end
local seq = (tonumber(state[2]) or 0) + 1
local fields = {'id', ARGV[3], 'author', ARGV[4], 'text', ARGV[5], 'ts', ARGV[6]}
if cmid ~= '' then
  table.insert(fields, 'cmid')
  table.insert(fields, cmid)
end
if ARGV[8] ~= '' then
  table.insert(fields, 'aid')
  table.insert(fields, ARGV[8])
end
redis.call('XADD', log, 'MAXLEN', retention, string.format('%d-0', seq), unpack(fields))
redis.call('HSET', meta, 'epoch', epoch, 'head', string.format('%d', seq))
if cmid ~= '' then redis.call('ZADD', ids, seq, cmid) end
redis.call('ZREMRANGEBYSCORE', ids, '-inf', string.format('(%d', seq - retention + 1))
redis.call('SPUBLISH', signal, string.format('%d', seq))
return {1, epoch, seq}
`);

/**
 * Reads a room's state and, in the same instant, messages after or before a
 * seq (exclusive), or none.
 *
 * KEYS: meta, log
 * ARGV: mode ('after', 'before' or 'info'), seq, limit
 * Returns {epoch ('' for a room with no messages), head, oldest, entries}.
 */
export const READ = new Script(`
local state = redis.call('HMGET', KEYS[1], 'epoch', 'head')
local head = tonumber(state[2]) or 0
local oldest = 0
local entries = {}
if head > 0 then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if #first > 0 then oldest = tonumber(string.match(first[1][1], '^%d+')) end
  local mode, bound = ARGV[1], tonumber(ARGV[2])
  if mode == 'after' and bound < head then
    entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[2] .. '-0', '+', 'COUNT', ARGV[3])
  elseif mode == 'before' and bound > 1 then
    entries = redis.call('XREVRANGE', KEYS[2], '(' .. ARGV[2] .. '-0', '-', 'COUNT', ARGV[3])
  end
end
return {state[1] or '', head, oldest, entries}
`);

/**
 * Gives a room a new epoch and signals it (the payload is the head, as an
 * append's is its new seq), so that its parked polls read again and find
 * their cursors reset. A room that has no messages (any more) is left
 * alone: a meta hash holding an epoch and no head would be a room of a
 * shape nothing else writes.
 *
 * KEYS: meta, signal
 * ARGV: epoch
 */
export const RENEW_EPOCH = new Script(`
local head = redis.call('HGET', KEYS[1], 'head')
if not head then return end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
redis.call('SPUBLISH', KEYS[2], head)
`);

/**
 * What the private room scripts share. KEYS are the room's record (hash:
 * title, owner, ownerName, joins), members (zset user id → join number) and
 * names (hash user id → name), then its signal channel. The earliest-joined
 * member owns the room, so `settle` passes ownership on when the owner
 * leaves, and a room left empty keeps its last owner.
 */
const RECORD_LUA = `
local function record()
  local state = redis.call('HMGET', KEYS[1], 'title', 'owner', 'ownerName')
  local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
  local members = {}
  if #ids > 0 then
    local names = redis.call('HMGET', KEYS[3], unpack(ids))
    for i, id in ipairs(ids) do
      members[2 * i - 1] = id
      members[2 * i] = names[i]
    end
  end
  return {state[1], state[2], state[3], members}
end
local function settle()
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if first then redis.call('HSET', KEYS[1], 'owner', first, 'ownerName', redis.call('HGET', KEYS[3], first)) end
  redis.call('SPUBLISH', KEYS[4], 'members')
end
`;

/**
 * A private room's record, read in one instant.
 *
 * KEYS: record, members, names
 * Returns {title, owner id, owner name, {id, name, …}}, or nil when the room has no record.
 */
export const READ_RECORD = new Script(`${RECORD_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return record()
`);

/**
 * Makes users members of a private room, atomically, and signals the room
 * when that changed it. Modes: 'create' makes the record (with `title`)
 * unless it exists; 'direct' makes it unless it exists, and leaves the
 * names of users who are members already as they are (the caller may know
 * the other user only by id); 'add' needs the record, and updates the name
 * kept for a member. With a limit above 0, a user who is not a member is
 * not added to a room that has that many members.
 *
 * KEYS: record, members, names, signal
 * ARGV: mode, title, limit (0: none), then a user id and name for each user, in joining order
 * Returns {created (1 or 0), record (as READ_RECORD)}, or nil when 'create' found a record or 'add' found none.
 */
export const JOIN = new Script(`${RECORD_LUA}
local mode = ARGV[1]
local created = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  if mode == 'create' then return false end
elseif mode == 'add' then
  return false
else
  redis.call('HSET', KEYS[1], 'title', ARGV[2], 'joins', 0)
  created = 1
end
local changed = created == 1
local limit = tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local id, name = ARGV[i], ARGV[i + 1]
  local kept = redis.call('HGET', KEYS[3], id)
  if not kept and limit > 0 and redis.call('ZCARD', KEYS[2]) >= limit then
    -- full: not added
  elseif not kept then
    redis.call('ZADD', KEYS[2], redis.call('HINCRBY', KEYS[1], 'joins', 1), id)
    redis.call('HSET', KEYS[3], id, name)
    changed = true
  elseif mode == 'add' and kept ~= name then
    redis.call('HSET', KEYS[3], id, name)
    changed = true
  end
end
if changed then settle() end
return {created, record()}
`);

/**
 * Takes a user out of a private room's members, atomically, and signals the
 * room when they were one.
 *
 * KEYS: record, members, names, signal
 * ARGV: user id
 * Returns {removed (1 or 0), record (as READ_RECORD)}, or nil when the room has no record.
 */
export const LEAVE = new Script(`${RECORD_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
if removed == 1 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  settle()
end
return {removed, record()}
`);
