#!/usr/bin/env python3
"""Writes the hand-made seeds of each target's corpus: valid sessions and frames, from
which the fuzzer mutates (run from tests/fuzz: python3 seeds/make.py)."""
import json, os

def frames(*objs):
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs).encode()

def session(count, lines):
    # lines: (connection, frame object or raw bytes)
    out = bytes([count])
    for conn, frame in lines:
        body = frame if isinstance(frame, bytes) else json.dumps(frame, ensure_ascii=False).encode()
        out += bytes([conn]) + body + b"\n"
    return out

def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/seed-{name}", "wb") as f:
        f.write(data)

hello = lambda name, **kw: {"type": "hello", "protocol": 3, "name": name, **kw}
guests = [
    (0, hello("alice")), (1, hello("bob")),
    (0, {"type": "join", "room": "rust"}), (1, {"type": "join", "room": "rust"}),
    (0, {"type": "say", "room": "rust", "text": "hi", "id": "a1"}),
    (1, {"type": "say", "room": "rust", "text": "yo", "reply_to": 1, "id": "b1"}),
    (1, {"type": "react", "room": "rust", "seq": 3, "emoji": "👍", "on": True}),
    (0, {"type": "typing", "room": "rust"}),
    (0, {"type": "history", "room": "rust", "before": 9, "limit": 5}),
    (1, {"type": "history", "room": "general", "after": 0}),
    (0, {"type": "rooms"}), (1, {"type": "search", "query": "hi from:alice"}),
    (0, {"type": "part", "room": "rust"}), (1, {"type": "ping", "token": "t"}), (0, {"type": "bye"}),
]
write("session", "guests", session(1, guests))
accounts = [
    (0, hello("root", register=True, password="correct horse")),
    (1, hello("carol", register=True, password="battery staple")),
    (0, {"type": "join", "room": "mods"}), (1, {"type": "join", "room": "mods"}),
    (0, {"type": "role", "room": "mods", "name": "carol", "role": "op"}),
    (0, {"type": "topic", "room": "mods", "text": "be nice"}),
    (1, {"type": "say", "room": "mods", "text": "ok", "id": "c1"}),
    (1, {"type": "edit", "room": "mods", "seq": 5, "text": "okay"}),
    (0, {"type": "mute", "room": "mods", "name": "carol", "minutes": 1}),
    (0, {"type": "settings", "room": "mods", "invite_only": True}),
    (0, {"type": "invite", "room": "mods", "name": "carol"}),
    (0, {"type": "delete", "room": "mods", "seq": 5}),
    (1, {"type": "say", "to": "root", "text": "psst", "id": "c2"}),
    (0, {"type": "read", "with": "carol", "seq": 1}),
    (0, {"type": "remove", "room": "mods", "name": "carol", "message": "bye"}),
    (0, {"type": "ban", "room": "mods", "name": "carol"}), (0, {"type": "unban", "room": "mods", "name": "carol"}),
    (0, {"type": "ban", "name": "carol", "address": True}), (0, {"type": "unban", "name": "carol"}),
    (1, {"type": "set_password", "password": "battery staple", "new_password": "horse battery"}),
]
write("session", "accounts", session(2, accounts))
write("session", "garbage", session(1, [(0, b"\xff\xfe"), (0, b"{"), (0, b'{"type":"hello"}'), (0, b"{}")]))
write("session", "v1", session(0, [(0, hello("dave", protocol=1)), (0, {"type": "say", "text": "old"}), (0, {"type": "ping"})]))

write("decoder", "client", b"\x40" + frames(*[f for _, f in guests + accounts]))
write("decoder", "server", b"\x40" + frames(
    {"type": "welcome", "protocol": 3, "name": "a", "users": ["a"], "seq": 1, "oldest": 1, "epoch": "e", "token": "t", "rooms": ["general"], "account": True, "conversations": [{"with": "b", "seq": 2, "read": 1}], "invites": [], "limits": {"max_frame": 16384, "max_text": 4096, "max_name": 32, "rate": 5, "burst": 20}},
    {"type": "message", "room": "r", "seq": 2, "time": 1, "from": "a", "text": "x", "reply_to": 1, "edited": 3, "reactions": [{"emoji": "👍", "count": 1, "names": ["a"]}]},
    {"type": "room", "room": "r", "users": ["a"], "seq": 2, "oldest": 1, "topic": "t", "roles": {"a": "owner"}, "invite_only": False, "read": 1},
    {"type": "search_results", "query": "x", "results": [], "cursor": "c"},
    {"type": "error", "code": "rate_limited", "message": "m", "id": "i", "retry_after": 100},
) + b"{\"type\":\"left\",\"room\":\"r\",\"seq\":3,\"time\":1,\"name\":\"a\",\"reason\":\"banned\",\"by\":\"b\"}\r\n\n")
for i, name in enumerate(["alice", "Zoë", "δημήτρης", "李小龍", "a b", "#rust", "e\u0301", "x\u200dy", " A1ice "]):
    write("names", str(i), name.encode())
for i, text in enumerate(["alice\u0001alice", "bob\u0001correct horse", "lunch from:da\u0001Lunch at noon", "\"crème brûlée\" in:rust\u0001Crème brûlée", "東京\u0001会議は東京で", "👍", "x\u0001👩‍👩‍👧", "topic\u0001line\ttab"]):
    write("texts", str(i), text.encode())
