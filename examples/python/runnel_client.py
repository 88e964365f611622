#!/usr/bin/env python3
"""A Runnel producer and consumer written from docs/protocol.md alone.

Needs only the standard library and a MessagePack library (Debian: python3-msgpack).

  runnel_client.py --broker 127.0.0.1:9600 produce TOPIC < lines     one message per line
  runnel_client.py --broker 127.0.0.1:9600 consume TOPIC COUNT        prints COUNT values
  runnel_client.py --broker 127.0.0.1:9600 consume TOPIC COUNT --group G
                                        the same, as a member of group G: only its share

With --tls-ca FILE (and --tls-cert/--tls-key for a broker that requires client certificates)
it connects with TLS (the ssl module), verifying the broker's certificate against FILE.

With --user NAME it authenticates with SCRAM-SHA-256 (protocol.md, authenticate; hashlib and
hmac only), the password taken from the environment variable RUNNEL_PASSWORD.

Consume reads every partition of TOPIC from its earliest offset and prints one line per
record, as "partition offset key value" (key "-" when absent), checking every batch's crc.
"""
import argparse
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import sys
import time
import zlib

import msgpack

HEADER = struct.Struct(">qiibIhiqqqhii")  # protocol.md section 3: the 61-byte batch header
assert HEADER.size == 61


class Connection:
    """One TCP connection; requests are sent one at a time (pipelining is optional)."""

    def __init__(self, address, tls=None):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.next_id = 1

    def _read_exactly(self, n):
        chunks = []
        while n > 0:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def request(self, op, **fields):
        request_id = self.next_id
        self.next_id += 1
        body = msgpack.packb({"id": request_id, "op": op, **fields}, use_bin_type=True)
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        (length,) = struct.unpack(">I", self._read_exactly(4))
        response = msgpack.unpackb(self._read_exactly(length), raw=False)
        if response.get("id") != request_id:
            raise RuntimeError(f"response id {response.get('id')} for request {request_id}")
        if "error" in response:
            raise RuntimeError(f"{op}: {response['error']['code']}: {response['error']['message']}")
        return response


def authenticate(connection, user, password):
    """SCRAM-SHA-256 in two authenticate round trips (RFC 5802; docs/protocol.md, authenticate)."""
    saslname = user.replace("=", "=3D").replace(",", "=2C")
    client_nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={saslname},r={client_nonce}"
    server_first = connection.request("authenticate", mechanism="SCRAM-SHA-256", message="n,," + first_bare)["message"]
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    nonce, salt, iterations = fields["r"], base64.b64decode(fields["s"]), int(fields["i"])
    if not nonce.startswith(client_nonce) or iterations < 4096:
        raise RuntimeError("authenticate: the broker's server-first message fails the SCRAM checks")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={nonce}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    server_final = connection.request("authenticate", mechanism="SCRAM-SHA-256", message=f"{without_proof},p={proof}")["message"]
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expected = "v=" + base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(server_final, expected):
        raise RuntimeError("authenticate: the broker's signature is wrong (it does not hold this user's verifier)")


def encode_batch(messages, now_ms):
    """messages: list of (key bytes or None, value bytes). Returns one record batch."""
    records = b"".join(msgpack.packb([0, key, value, None], use_bin_type=True) for key, value in messages)
    after_crc = struct.pack(">hiqqqhii", 0, len(messages) - 1, now_ms, now_ms, -1, -1, -1, len(messages)) + records
    crc = zlib.crc32(after_crc)
    batch_length = 4 + 1 + 4 + len(after_crc)  # leaderEpoch + magic + crc + the rest
    return struct.pack(">qiibI", 0, batch_length, 0, 1, crc) + after_crc


def decode_batches(records):
    """Yields (offset, timestamp, key, value) from a fetch response's concatenated batches."""
    position = 0
    while len(records) - position >= HEADER.size:
        (base_offset, batch_length, _epoch, magic, crc, _attributes, _last_delta, first_ts, _max_ts,
         _pid, _pepoch, _seq, count) = HEADER.unpack_from(records, position)
        end = position + 12 + batch_length
        if end > len(records):
            break  # a trailing partial batch: ask again from the last offset + 1
        if magic != 1 or zlib.crc32(records[position + 21:end]) != crc:
            raise ValueError(f"corrupt batch at offset {base_offset}")
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(records[position + 61:end])
        for index, (ts_delta, key, value, _headers) in enumerate(unpacker):
            yield base_offset + index, first_ts + ts_delta, key, value
        if index + 1 != count:
            raise ValueError(f"batch at {base_offset} says {count} records, holds {index + 1}")
        position = end


def produce(connection, topic, lines):
    messages = [(None, line.encode()) for line in lines]
    now_ms = int(time.time() * 1000)
    response = connection.request("produce", durability="written",
                                  batches=[{"topic": topic, "partition": 0, "batch": encode_batch(messages, now_ms)}])
    result = response["results"][0]
    if "error" in result:
        raise RuntimeError(f"produce: {result['error']['code']}: {result['error']['message']}")
    print(f"appended {len(messages)} messages at offsets {result['baseOffset']}..{result['lastOffset']}", file=sys.stderr)


def consume(connection, topic, count):
    metadata = connection.request("metadata", topics=[topic])["topics"][0]
    if "error" in metadata:
        raise RuntimeError(f"metadata: {metadata['error']['code']}")
    positions = {p["partition"]: p["logStartOffset"] for p in metadata["partitions"]}
    printed = 0
    while printed < count:
        wanted = [{"topic": topic, "partition": p, "offset": o} for p, o in sorted(positions.items())]
        response = connection.request("fetch", partitions=wanted, maxBytes=1 << 20, maxWaitMs=500, minBytes=1)
        records, start = response["records"], 0
        for entry in response["partitions"]:
            if "error" in entry:
                raise RuntimeError(f"fetch: {entry['error']['code']}: {entry['error']['message']}")
            own = records[start:start + entry["recordsBytes"]]
            start += entry["recordsBytes"]
            for offset, _ts, key, value in decode_batches(own):
                if offset < positions[entry["partition"]] or printed >= count:
                    continue  # the first batch may begin below the offset asked for
                key_text = "-" if key is None else key.decode()
                print(entry["partition"], offset, key_text, value.decode())
                positions[entry["partition"]] = offset + 1
                printed += 1


def partitions_of(lists):
    return {p for entry in lists for p in entry["partitions"]}


def consume_group(connection, topic, count, group):
    """Joins GROUP, consumes what the broker assigns, commits before giving a partition up."""
    member = connection.request("joinGroup", group=group, topics=[topic])
    member_id, positions, printed, beat_at = member["memberId"], {}, 0, 0.0
    while printed < count:
        if time.time() >= beat_at:  # heartbeat: what we hold in, news out
            owned = [{"topic": topic, "partitions": sorted(positions)}]
            member = connection.request("heartbeat", group=group, memberId=member_id, owned=owned,
                                        memberEpoch=member["memberEpoch"])
            beat_at = time.time() + member["heartbeatIntervalMs"] / 1000
            given = partitions_of(member["revoke"]) & set(positions)
            if given:  # commit, then drop, then tell the broker at once
                commit(connection, group, topic, {p: positions.pop(p) for p in given}, member)
                beat_at = 0.0
            for p in partitions_of(member["assigned"]) - set(positions):
                asked = [{"topic": topic, "partition": p}]
                committed = connection.request("fetchOffsets", group=group, partitions=asked)["offsets"][0]["offset"]
                earliest = connection.request("listOffsets", partitions=[{**asked[0], "at": "earliest"}])
                positions[p] = committed if committed >= 0 else earliest["partitions"][0]["offset"]
        if not positions:
            time.sleep(0.1)
            continue
        wanted = [{"topic": topic, "partition": p, "offset": o} for p, o in sorted(positions.items())]
        response = connection.request("fetch", partitions=wanted, maxBytes=1 << 20, maxWaitMs=200)
        start = 0
        for entry in response["partitions"]:
            own, start = response["records"][start:start + entry["recordsBytes"]], start + entry["recordsBytes"]
            for offset, _ts, key, value in decode_batches(own):
                if offset >= positions[entry["partition"]] and printed < count:
                    print(entry["partition"], offset, "-" if key is None else key.decode(), value.decode())
                    positions[entry["partition"]], printed = offset + 1, printed + 1
    commit(connection, group, topic, positions, member)
    connection.request("leaveGroup", group=group, memberId=member_id)


def commit(connection, group, topic, positions, member):
    offsets = [{"topic": topic, "partition": p, "offset": o} for p, o in positions.items()]
    if offsets:
        connection.request("commitOffsets", group=group, memberId=member["memberId"],
                           generation=member["generation"], offsets=offsets)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="127.0.0.1:9600")
    parser.add_argument("command", choices=["produce", "consume"])
    parser.add_argument("topic")
    parser.add_argument("count", nargs="?", type=int, default=0)
    parser.add_argument("--group", help="consume as a member of this consumer group")
    parser.add_argument("--tls-ca", help="connect with TLS, trusting this PEM CA file")
    parser.add_argument("--tls-cert", help="PEM client certificate (mutual TLS), with --tls-key")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--user", help="authenticate as this user (password in RUNNEL_PASSWORD)")
    args = parser.parse_args()
    tls = None
    if args.tls_ca:
        tls = ssl.create_default_context(cafile=args.tls_ca)
        if args.tls_cert:
            tls.load_cert_chain(args.tls_cert, args.tls_key)
    connection = Connection(args.broker, tls)
    if args.user:
        password = os.environ.get("RUNNEL_PASSWORD")
        if not password:
            parser.error("--user needs the password in the environment variable RUNNEL_PASSWORD")
        authenticate(connection, args.user, password)
    if args.command == "produce":
        produce(connection, args.topic, sys.stdin.read().splitlines())
    elif args.group:
        consume_group(connection, args.topic, args.count, args.group)
    else:
        consume(connection, args.topic, args.count)


if __name__ == "__main__":
    main()
