-- Every change a node makes to the shared Redis, as one script so that each change is
-- atomic: a seq is taken and its event appended in one step, a name is claimed and its
-- holder checked in one step, a member's `left`s are recorded and its record removed in
-- one step. ARGV[1] names the operation, the rest are its arguments. Keys are built here,
-- so this needs one Redis (a primary with replicas is fine; Redis Cluster is not).
--
-- Keys (all under "chat:"):
--   epoch             the epoch every seq counts in
--   seq               hash: stream -> its newest seq
--   s:<stream>        the stream's events, entry id "<seq>-1", field k = the kind; a
--                     joined also has j = member (case-folded) and n = name, a left l, a
--                     post with an id p = poster and i = id (streams written before
--                     frames moved out hold the frame in f)
--   fr:<stream>       hash: seq -> the event's frame. Frames live here, not in the stream,
--                     so that a deleted message can be stored anew without its text: a
--                     stream entry cannot be changed, and one deleted stays in the
--                     stream's memory (and in Redis's files) until its whole node goes
--   st:<stream>       hash: the room's state (topic, roles, settings, bans, mutes,
--                     invitations), field -> value
--   rx:<stream>       hash: seq -> what is kept beside that message (JSON: who reacted
--                     beyond the names it lists)
--   ed:<stream>       hash: seq -> the seqs of that message's edits, "7,9"
--   rd:<account>      hash: stream -> the account's read marker there
--   sbans             hash: server ban key -> what the ban holds
--   invof:<account>   hash: room -> who invited the account there
--   rooms             hash: room key -> its name as first spelled
--   in:<room>         hash: who is in the room (case-folded -> name), for its user list
--   size              sorted set: room -> members, for room_list
--   ro:<member>       set: the rooms a member online is in
--   m:<member>        hash: a member online: node, token, name, skel, account
--   skel              hash: skeleton -> the member online under it
--   nodes             set: every node that has joined and not been reaped
--   node:<id>         a node's lease (expires unless refreshed)
--   nm:<id>           set: the members online on a node
--   reap:<id>         who is reaping a dead node
--   posts:<poster>    list: "id\nframe", newest first
--   pi:<poster>       hash: id -> "<stream>\n<seq>" of each post in posts:<poster>, so
--                     that a post sent again to another node is not recorded twice
--   conv:<account>    hash: other account -> "time\nseq\nname" of the last message
--   direct            stream of every direct event (a = from, b = to, k = its
--                     conversation's stream, s = its seq; the frame is in fr:<k>), for
--                     delivery
--   feed              stream of every recorded event but joins and parts (k = its
--                     stream, s = its seq; the frame is in fr:<k>), for the search index
--                     every node keeps
--   acct              hash: account -> "name\nhash"
--   askel             hash: skeleton -> account
--   fails:a:<acct>, fails:ip:<ip>   sorted sets of wrong-password times
-- Channels: ctl:<id> (to one node), events (to every node).
local P = 'chat:'
local op = ARGV[1]
local REMEMBERED = 256
local DIRECT_KEPT = 10000
local FEED_KEPT = 100000

-- Keeps the room's member count for room_list.
local function resize(stream)
  local n = redis.call('HLEN', P .. 'in:' .. stream)
  if n > 0 then
    redis.call('ZADD', P .. 'size', n, stream)
  else
    redis.call('ZREM', P .. 'size', stream)
  end
end

-- Records that `member` (case-folded) named `name` left the room `stream`.
local function record_left(stream, member, name, reason, time)
  local seq = redis.call('HINCRBY', P .. 'seq', stream, 1)
  local room = redis.call('HGET', P .. 'rooms', stream) or stream
  local frame = '{"type":"left","room":' .. cjson.encode(room) .. ',"seq":' .. seq ..
    ',"time":' .. time .. ',"name":' .. cjson.encode(name) .. ',"reason":"' .. reason .. '"}\n'
  redis.call('XADD', P .. 's:' .. stream, seq .. '-1', 'k', 'l', 'l', member)
  redis.call('HSET', P .. 'fr:' .. stream, seq, frame)
  redis.call('HDEL', P .. 'in:' .. stream, member)
  resize(stream)
end

-- Takes a member offline: a `left` in each of its rooms, and its name is free again.
-- Only if `check` holds: its token is still `token` (its own node releases it), or it is
-- still on node `node` (a dead node is reaped). Returns how many rooms it left, or -1.
local function release(member, check, expected, reason, time)
  local key = P .. 'm:' .. member
  local cur = redis.call('HMGET', key, 'node', 'token', 'name', 'skel')
  if not cur[1] then return -1 end
  if (check == 'token' and cur[2] ~= expected) or (check == 'node' and cur[1] ~= expected) then
    return -1
  end
  local rooms = redis.call('SMEMBERS', P .. 'ro:' .. member)
  table.sort(rooms)
  for _, stream in ipairs(rooms) do
    record_left(stream, member, cur[3], reason, time)
  end
  redis.call('DEL', P .. 'ro:' .. member, key)
  if redis.call('HGET', P .. 'skel', cur[4]) == member then
    redis.call('HDEL', P .. 'skel', cur[4])
  end
  redis.call('SREM', P .. 'nm:' .. cur[1], member)
  return #rooms
end

-- A stream's newest and oldest seq (0 when empty).
local function ends(stream)
  local newest = tonumber(redis.call('HGET', P .. 'seq', stream) or '0')
  local oldest = 0
  local first = redis.call('XRANGE', P .. 's:' .. stream, '-', '+', 'COUNT', 1)
  if first[1] then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
  return {newest, oldest}
end

-- Removes a field of a room's state (and an invitation from the invitee's index).
local function remove_field(stream, field)
  redis.call('HDEL', P .. 'st:' .. stream, field)
  if string.sub(field, 1, 7) == 'invite:' then
    redis.call('HDEL', P .. 'invof:' .. string.sub(field, 8), stream)
  end
end

-- Applies changes to a room's state: a JSON list of {"s", field, value}, {"r", field} and
-- {"p", prefix} (remove every field that starts with it). Invitations are also kept by
-- invitee, in invof:<account> (room -> who invited).
local function change_state(stream, ops)
  local st = P .. 'st:' .. stream
  for _, o in ipairs(cjson.decode(ops)) do
    if o[1] == 's' then
      redis.call('HSET', st, o[2], o[3])
      if string.sub(o[2], 1, 7) == 'invite:' then
        local by = string.match(o[3], '^([^\n]*)')
        redis.call('HSET', P .. 'invof:' .. string.sub(o[2], 8), stream, by)
        -- The invitee may be online on any node, in no room of this one's.
        redis.call('PUBLISH', P .. 'events', 'invited\n' .. string.sub(o[2], 8) .. '\n' .. stream .. '\n' .. by)
      end
    elseif o[1] == 'r' then
      remove_field(stream, o[2])
    elseif o[1] == 'p' then
      for _, field in ipairs(redis.call('HKEYS', st)) do
        if string.sub(field, 1, #o[2]) == o[2] then remove_field(stream, field) end
      end
    end
  end
end

-- An `edited` event without its text (its message was deleted). `"text":` with its quote
-- unescaped can only be the key (a quote inside a string is always escaped), and it is the
-- frame's last field: what the server's own erasure writes, to the byte.
local function without_text(frame)
  local at = string.find(frame, ',"text":', 1, true)
  if not at then return frame end
  return string.sub(frame, 1, at - 1) .. '}\n'
end

-- Stores a message anew as an event about it changed it: its frame, and the copy in the
-- poster's remembered posts.
local function rewrite(stream, seq, poster, id, frame)
  redis.call('HSET', P .. 'fr:' .. stream, seq, frame)
  if id ~= '' then
    local posts = P .. 'posts:' .. poster
    for i, entry in ipairs(redis.call('LRANGE', posts, 0, -1)) do
      if string.sub(entry, 1, #id + 1) == id .. '\n' then
        redis.call('LSET', posts, i - 1, id .. '\n' .. frame)
      end
    end
  end
end

-- The frame of a post its poster sent with this id already, if it is remembered.
local function known_post(poster, id)
  local at = redis.call('HGET', P .. 'pi:' .. poster, id)
  if not at then return nil end
  -- A conversation's stream holds a newline itself: the seq is after the last one.
  local stream, seq = string.match(at, '^(.*)\n(%d+)$')
  return redis.call('HGET', P .. 'fr:' .. stream, seq)
end

if op == 'epoch' then
  redis.call('SET', P .. 'epoch', ARGV[2], 'NX')
  return redis.call('GET', P .. 'epoch')

elseif op == 'append' then
  -- ARGV: count, then per event: stream, room, prefix, suffix, kind (m, j, l, d: a direct
  -- message, e: another direct event), member, name, token, poster, id, dm from, dm to,
  -- dm to-name, dm from-name, time, state changes (JSON, '' none), and the message the
  -- event is about ('' none): its seq, poster, id, its frame from now on ('' unchanged),
  -- the frame it was decided against ('' not compared), what is kept beside it ('' as it
  -- is, '-' nothing) and what the event does to it ('edit', 'erase' or '').
  -- A joined or left with a token is recorded only while the member holds that token.
  -- A post whose poster sent one with the same id already (to any node) is not recorded
  -- again: its place holds that post's frame instead of a seq. Returns the seqs (0: not
  -- recorded), or {-1} and nothing written when a message is no longer the one its event
  -- was decided against.
  local count = tonumber(ARGV[2])
  local N = 23
  for i = 0, count - 1 do
    local b = 3 + i * N
    local expect = ARGV[b + 20]
    if expect ~= '' and redis.call('HGET', P .. 'fr:' .. ARGV[b], ARGV[b + 16]) ~= expect then
      return {-1}
    end
  end
  local seqs = {}
  for i = 0, count - 1 do
    local b = 3 + i * N
    local stream, room, prefix, suffix, kind = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
    local member, name, token, poster, id = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8], ARGV[b + 9]
    local from, to, to_name, from_name, time = ARGV[b + 10], ARGV[b + 11], ARGV[b + 12], ARGV[b + 13], ARGV[b + 14]
    local ops, rw_seq, rw_poster, rw_id, rw_frame = ARGV[b + 15], ARGV[b + 16], ARGV[b + 17], ARGV[b + 18], ARGV[b + 19]
    local aside, life = ARGV[b + 21], ARGV[b + 22]
    local wanted = true
    if token ~= '' then
      wanted = redis.call('HGET', P .. 'm:' .. member, 'token') == token
    end
    local known = nil
    if wanted and id ~= '' then known = known_post(poster, id) end
    if not wanted then
      seqs[#seqs + 1] = 0
    elseif known then
      seqs[#seqs + 1] = known
    else
      local seq = redis.call('HINCRBY', P .. 'seq', stream, 1)
      local frame = prefix .. seq .. suffix
      local key = P .. 's:' .. stream
      redis.call('HSET', P .. 'fr:' .. stream, seq, frame)
      if kind == 'j' then
        redis.call('XADD', key, seq .. '-1', 'k', kind, 'j', member, 'n', name)
        redis.call('HSET', P .. 'in:' .. stream, member, name)
        redis.call('SADD', P .. 'ro:' .. member, stream)
      elseif kind == 'l' then
        redis.call('XADD', key, seq .. '-1', 'k', kind, 'l', member)
        redis.call('HDEL', P .. 'in:' .. stream, member)
        redis.call('SREM', P .. 'ro:' .. member, stream)
      elseif id ~= '' then
        redis.call('XADD', key, seq .. '-1', 'k', kind, 'p', poster, 'i', id)
      else
        redis.call('XADD', key, seq .. '-1', 'k', kind)
      end
      if room ~= '' then
        if redis.call('HSETNX', P .. 'rooms', stream, room) == 1 then
          redis.call('PUBLISH', P .. 'events', 'room\n' .. stream .. '\n' .. room)
        end
        if kind == 'j' or kind == 'l' then resize(stream) end
      end
      if id ~= '' then
        local posts = P .. 'posts:' .. poster
        redis.call('LPUSH', posts, id .. '\n' .. frame)
        local gone = redis.call('LINDEX', posts, REMEMBERED)
        if gone then
          redis.call('HDEL', P .. 'pi:' .. poster, string.sub(gone, 1, string.find(gone, '\n', 1, true) - 1))
        end
        redis.call('LTRIM', posts, 0, REMEMBERED - 1)
        redis.call('HSET', P .. 'pi:' .. poster, id, stream .. '\n' .. seq)
      end
      if kind == 'd' then
        redis.call('HSET', P .. 'conv:' .. from, to, time .. '\n' .. seq .. '\n' .. to_name)
        redis.call('HSET', P .. 'conv:' .. to, from, time .. '\n' .. seq .. '\n' .. from_name)
      end
      if kind == 'd' or kind == 'e' then
        redis.call('XADD', P .. 'direct', 'MAXLEN', '~', DIRECT_KEPT, '*', 'a', from, 'b', to,
          'k', stream, 's', seq)
      end
      if kind ~= 'j' and kind ~= 'l' then
        redis.call('XADD', P .. 'feed', 'MAXLEN', '~', FEED_KEPT, '*', 'k', stream, 's', seq)
      end
      if ops ~= '' then change_state(stream, ops) end
      if rw_frame ~= '' then
        rewrite(stream, rw_seq, rw_poster, rw_id, rw_frame)
      end
      if aside == '-' then
        redis.call('HDEL', P .. 'rx:' .. stream, rw_seq)
      elseif aside ~= '' then
        redis.call('HSET', P .. 'rx:' .. stream, rw_seq, aside)
      end
      -- A message's edits, so that their texts go when it is deleted.
      local edits = P .. 'ed:' .. stream
      if life == 'edit' then
        local earlier = redis.call('HGET', edits, rw_seq)
        redis.call('HSET', edits, rw_seq, earlier and (earlier .. ',' .. seq) or tostring(seq))
      elseif life == 'erase' then
        local listed = redis.call('HGET', edits, rw_seq)
        if listed then
          for edit in string.gmatch(listed, '[^,]+') do
            local old = redis.call('HGET', P .. 'fr:' .. stream, edit)
            if old then redis.call('HSET', P .. 'fr:' .. stream, edit, without_text(old)) end
          end
          redis.call('HDEL', edits, rw_seq)
        end
      end
      seqs[#seqs + 1] = seq
    end
  end
  return seqs

elseif op == 'read' then
  -- ARGV: count, then per marker: account, stream, seq. Each is kept if it is higher.
  for i = 0, tonumber(ARGV[2]) - 1 do
    local b = 3 + i * 3
    local key, stream, seq = P .. 'rd:' .. ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2])
    local kept = tonumber(redis.call('HGET', key, stream) or '0')
    if seq > kept then redis.call('HSET', key, stream, seq) end
  end
  return 1

elseif op == 'head' then
  -- A stream's newest and oldest seq (0 when empty).
  return ends(ARGV[2])

elseif op == 'snapshot' then
  -- A room as of now: its newest and oldest seq, its name, who is in it, and its state.
  local stream = ARGV[2]
  local head = ends(stream)
  local name = redis.call('HGET', P .. 'rooms', stream) or ''
  return {head[1], head[2], name, redis.call('HGETALL', P .. 'in:' .. stream),
    redis.call('HGETALL', P .. 'st:' .. stream)}

elseif op == 'server_ban' then
  -- ARGV: key, value ('' to lift it). Every node hears of it.
  if ARGV[3] == '' then
    redis.call('HDEL', P .. 'sbans', ARGV[2])
  else
    redis.call('HSET', P .. 'sbans', ARGV[2], ARGV[3])
  end
  redis.call('PUBLISH', P .. 'events', 'sban\n' .. ARGV[2])
  return 1

elseif op == 'claim' then
  -- ARGV: member, skeleton, name, node, new token, token presented ('' none), force
  -- ('1': a password proved it), account ('1'/'0').
  -- Returns {'free'}, {'taken', name}, {'looks', name} or
  -- {'takeover', old node, name, account, rooms...}.
  local member, skeleton, name, node = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  local token, presented, force, account = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
  local key = P .. 'm:' .. member
  local cur = redis.call('HMGET', key, 'node', 'token', 'name', 'account')
  if cur[1] then
    if (presented ~= '' and cur[2] == presented) or force == '1' then
      if force == '1' then cur[4] = '1' end
      redis.call('SREM', P .. 'nm:' .. cur[1], member)
      redis.call('SADD', P .. 'nm:' .. node, member)
      redis.call('HSET', key, 'node', node, 'token', token, 'account', cur[4])
      if cur[1] ~= node then
        redis.call('PUBLISH', P .. 'ctl:' .. cur[1], 'replace\n' .. member .. '\n' .. cur[2])
      end
      local rooms = redis.call('SMEMBERS', P .. 'ro:' .. member)
      return {'takeover', cur[1], cur[3], cur[4], unpack(rooms)}
    end
    return {'taken', cur[3]}
  end
  local other = redis.call('HGET', P .. 'skel', skeleton)
  if other and other ~= member then
    local other_name = redis.call('HGET', P .. 'm:' .. other, 'name')
    if other_name then return {'looks', other_name} end
  end
  redis.call('HSET', key, 'node', node, 'token', token, 'name', name, 'skel', skeleton,
    'account', account)
  redis.call('HSET', P .. 'skel', skeleton, member)
  redis.call('SADD', P .. 'nm:' .. node, member)
  return {'free'}

elseif op == 'release' then
  -- ARGV: member, token, reason, time.
  return release(ARGV[2], 'token', ARGV[3], ARGV[4], ARGV[5])

elseif op == 'join_cluster' then
  -- ARGV: node, lease ms.
  redis.call('SADD', P .. 'nodes', ARGV[2])
  redis.call('SET', P .. 'node:' .. ARGV[2], '1', 'PX', ARGV[3])
  return 1

elseif op == 'lease' then
  -- ARGV: node, lease ms. 0: the node was reaped (its lease ran out) and must start over.
  if redis.call('SISMEMBER', P .. 'nodes', ARGV[2]) == 0 then return 0 end
  redis.call('SET', P .. 'node:' .. ARGV[2], '1', 'PX', ARGV[3])
  return 1

elseif op == 'reap' then
  -- ARGV: dead node, reaping node, time, most members this call. Returns how many
  -- members were taken offline, -1 when the node is alive or someone else reaps it.
  local dead, me, time, most = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
  if redis.call('EXISTS', P .. 'node:' .. dead) == 1 then return -1 end
  local lock = redis.call('GET', P .. 'reap:' .. dead)
  if lock and lock ~= me then return -1 end
  redis.call('SET', P .. 'reap:' .. dead, me, 'PX', 30000)
  local members = redis.call('SRANDMEMBER', P .. 'nm:' .. dead, most)
  for _, member in ipairs(members) do
    if release(member, 'node', dead, 'lost', time) < 0 then
      redis.call('SREM', P .. 'nm:' .. dead, member)
    end
  end
  if redis.call('SCARD', P .. 'nm:' .. dead) == 0 then
    redis.call('SREM', P .. 'nodes', dead)
    redis.call('DEL', P .. 'nm:' .. dead, P .. 'reap:' .. dead)
  end
  return #members

elseif op == 'register' then
  -- ARGV: account, skeleton, name, hash. 1: created; 0: it, or one that looks like it,
  -- exists.
  local account, skeleton, name, hash = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  if redis.call('HEXISTS', P .. 'acct', account) == 1 then return 0 end
  local other = redis.call('HGET', P .. 'askel', skeleton)
  if other and other ~= account then return 0 end
  redis.call('HSET', P .. 'acct', account, name .. '\n' .. hash)
  redis.call('HSET', P .. 'askel', skeleton, account)
  redis.call('PUBLISH', P .. 'events', 'account\n' .. account)
  return 1

elseif op == 'set_password' then
  -- ARGV: account, hash. 0: no such account.
  local account, hash = ARGV[2], ARGV[3]
  local cur = redis.call('HGET', P .. 'acct', account)
  if not cur then return 0 end
  local name = string.match(cur, '^([^\n]*)')
  redis.call('HSET', P .. 'acct', account, name .. '\n' .. hash)
  redis.call('PUBLISH', P .. 'events', 'account\n' .. account)
  return 1

elseif op == 'fail' then
  -- ARGV: account, address, time ms, window ms, node: a wrong password, counted
  -- everywhere.
  local account, address, time, window, node = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
  for _, key in ipairs({P .. 'fails:a:' .. account, P .. 'fails:ip:' .. address}) do
    redis.call('ZADD', key, time, time .. ':' .. redis.call('ZCARD', key))
    redis.call('ZREMRANGEBYSCORE', key, '-inf', time - window)
    redis.call('PEXPIRE', key, window)
  end
  redis.call('PUBLISH', P .. 'events', 'fail\n' .. account .. '\n' .. address .. '\n' .. node)
  return 1
end
return redis.error_reply('unknown operation ' .. tostring(op))
