"""confluent-kafka (Debian python3-confluent-kafka, librdkafka), unmodified, against Runnel's Kafka listener.

Usage: confluent_kafka_client.py PORT STEP [ARG]
  acks       - two messages to partition 0 of "ck" with acks ARG (0, 1 or all); prints what each
               delivery report said
  idempotent - an idempotent, zstd-compressing producer sends ten keyed messages to "ck";
               prints their offsets
  consume    - reads partition 0 of "ck" from ARG: beginning, end, an offset, or @MS (a timestamp,
               looked up with offsets_for_times); prints offset and value of each message
  group      - group "ckg" (subscribe, with on_assign/on_revoke): reads what is after the group's
               commit up to offset ARG, commits synchronously, prints the assignment, what it read and the commit
  rebalance  - two members of group "ckpair" on the 4-partition topic "ck4" in one process: the
               first takes every partition, the second joins and they split them, the second
               leaves and the first takes them all back; prints each callback
  static     - static membership (group.instance.id) in group "ckstatic" on "ck4": members with
               instance ids "one" and "two" split the partitions; "two" closes (a static member
               sends no LeaveGroup) and a new process with instance id "two" takes its place;
               prints each member's callbacks
  admin      - AdminClient creates topic "ckadmin", lists and describes the groups (one with a live
               member of it), deletes the topic
"""
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

port, step = int(sys.argv[1]), sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else ""
servers = f"127.0.0.1:{port}"
DEADLINE_S = 20


def produce(config, messages):
    """Sends (key, value, partition) triples; returns each delivery report as 'offset' or the error."""
    reports = []

    def delivered(error, message):
        # acks=0: delivered, but no offset is known (librdkafka reports none).
        reports.append(str(error.code()) if error else str(message.offset() if message.offset() is not None else "-"))

    producer = Producer({"bootstrap.servers": servers, **config})
    for key, value, partition in messages:
        producer.produce("ck", key=key, value=value, partition=partition, on_delivery=delivered)
    producer.flush(DEADLINE_S)
    return reports


def read(consumer, count):
    """Polls until `count` messages came or the deadline passed; returns them."""
    messages = []
    deadline = time.monotonic() + DEADLINE_S
    while len(messages) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        messages.append(message)
    return messages


def read_to(consumer, end_offset):
    """Polls until the message before `end_offset` came or the deadline passed; returns them all."""
    messages = []
    deadline = time.monotonic() + DEADLINE_S
    while (not messages or messages[-1].offset() < end_offset - 1) and time.monotonic() < deadline:
        messages.extend(read(consumer, 1))
    return messages


def names(partitions):
    return ",".join(sorted("%s/%d" % (each.topic, each.partition) for each in partitions)) or "-"


if step == "acks":
    for acks in [arg]:
        sent = [(b"k", ("acks=%s %d" % (acks, index)).encode(), 0) for index in range(2)]
        print("acks=%s" % acks, " ".join(produce({"acks": acks}, sent)))
elif step == "idempotent":
    config = {"enable.idempotence": True, "compression.type": "zstd", "linger.ms": 5}
    sent = [(b"key%d" % index, b"idempotent %d" % index, 0) for index in range(10)]
    print("offsets", " ".join(produce(config, sent)))
elif step == "consume":
    consumer = Consumer({"bootstrap.servers": servers, "group.id": "ckreader", "enable.auto.commit": False})
    if arg.startswith("@"):
        start = consumer.offsets_for_times([TopicPartition("ck", 0, int(arg[1:]))], 10)[0].offset
    else:
        start = {"beginning": OFFSET_BEGINNING, "end": OFFSET_END}.get(arg, None)
        start = int(arg) if start is None else start
    consumer.assign([TopicPartition("ck", 0, start)])
    if arg == "end":
        # The cached high watermark comes with the first fetch answer, which was asked at the end
        # offset ListOffsets gave: what the test produces after "ready" comes after it.
        while consumer.get_watermark_offsets(TopicPartition("ck", 0), cached=True)[1] < 0:
            consumer.poll(0.05)
        print("ready", flush=True)
        messages = read(consumer, 1)
    else:
        high = consumer.get_watermark_offsets(TopicPartition("ck", 0), 10)[1]
        messages = read_to(consumer, high)
    for message in messages:
        print(message.offset(), message.value().decode())
    consumer.close()
elif step == "group":
    events = []
    consumer = Consumer({"bootstrap.servers": servers, "group.id": "ckg", "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe(["ck"], on_assign=lambda _, partitions: events.append("assigned " + names(partitions)), on_revoke=lambda _, partitions: events.append("revoked " + names(partitions)))
    messages = read_to(consumer, int(arg))
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition("ck", 0)], 10)[0].offset
    consumer.close()
    print("\n".join(events))
    print("read", " ".join(str(message.offset()) for message in messages))
    print("committed", committed)
elif step == "rebalance" or step == "static":
    events = []

    def member(name, instance=None):
        config = {"bootstrap.servers": servers, "group.id": "ckpair" if instance is None else "ckstatic", "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 200, "client.id": name}
        if instance is not None:
            config["group.instance.id"] = instance
        consumer = Consumer(config)
        state = {"assigned": []}

        def assigned(_, partitions):
            state["assigned"] = partitions
            events.append("%s assigned %s" % (name, names(partitions)))

        def revoked(_, partitions):
            events.append("%s revoked %s" % (name, names(partitions)))

        consumer.subscribe(["ck4"], on_assign=assigned, on_revoke=revoked)
        return consumer, state

    def poll_until(consumers, condition):
        deadline = time.monotonic() + DEADLINE_S
        while not condition() and time.monotonic() < deadline:
            for consumer in consumers:
                consumer.poll(0.05)
        return condition()

    static = step == "static"
    first, first_state = member("first", "one" if static else None)
    poll_until([first], lambda: len(first_state["assigned"]) == 4)
    second, second_state = member("second", "two" if static else None)
    poll_until([first, second], lambda: len(first_state["assigned"]) == 2 and len(second_state["assigned"]) == 2)
    second.close()
    if static:
        third, third_state = member("third", "two")
        poll_until([first, third], lambda: len(third_state["assigned"]) == 2)
        third.close()
    else:
        poll_until([first], lambda: len(first_state["assigned"]) == 4)
    first.close()
    # Per member, in order (the members' callbacks interleave differently from run to run).
    order = {"first": 0, "second": 1, "third": 2}
    print("\n".join(sorted(events, key=lambda event: order[event.split(" ")[0]])))
elif step == "admin":
    admin = AdminClient({"bootstrap.servers": servers})
    for topic, future in admin.create_topics([NewTopic("ckadmin", num_partitions=3, replication_factor=1)]).items():
        future.result(10)
        print("created", topic)
    metadata = admin.list_topics(timeout=10)
    print("partitions", len(metadata.topics["ckadmin"].partitions))
    member = Consumer({"bootstrap.servers": servers, "group.id": "ckadmin-group", "session.timeout.ms": 6000})
    joined = []
    member.subscribe(["ckadmin"], on_assign=lambda _, partitions: joined.append(len(partitions)))
    deadline = time.monotonic() + DEADLINE_S
    while not joined and time.monotonic() < deadline:
        member.poll(0.1)
    for group in sorted(admin.list_groups(timeout=10), key=lambda each: each.id):
        print("group", group.id, group.state, group.protocol_type, group.protocol or "-", len(group.members))
    member.close()
    for topic, future in admin.delete_topics(["ckadmin"], operation_timeout=10).items():
        future.result(10)
        print("deleted", topic)
else:
    raise SystemExit("unknown step " + step)
