import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script run by its SHA1, sent in full only when the server does not have it (after a restart). */
export class Script {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      // NOSCRIPT means nothing ran, so sending the script itself cannot run it twice.
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Appends one message, atomically: the idempotency check, the next seq, the
 * stream entry (its ID is `<seq>-0`) with exact MAXLEN trimming, the room's
 * head and epoch, the clientMsgId index (trimmed with the stream) and the
 * change signal. A room's epoch is fixed when its first message is stored,
 * from the store epoch the caller passes.
 *
 * KEYS: meta (hash: epoch, head), log (stream), ids (zset clientMsgId → seq), signal (shard channel)
 * ARGV: store epoch, retention, id, author, text, ts, clientMsgId ('' for none)
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
    if #found > 0 then return {0, epoch, found[1][1], found[1][2]} end
  end
end
local seq = (tonumber(state[2]) or 0) + 1
local fields = {'id', ARGV[3], 'author', ARGV[4], 'text', ARGV[5], 'ts', ARGV[6]}
if cmid ~= '' then
  fields[9] = 'cmid'
  fields[10] = cmid
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
