"""kafka-python 2.0.2 (Debian python3-kafka), unmodified, against Runnel's Kafka listener.

Usage: kafka_python_client.py PORT STEP
  produce  - five keyed messages to topic "py"; prints the api_version the client inferred
  consume  - reads partition 0 of "py" from the earliest offset (assign mode), prints offset key value
  commit   - group "pyg" (assign mode): reads what is after its committed offset, commits, prints both
  group    - group "pymembers" (subscribe, a real group member): reads 5 messages from where the
             group's commit left off, commits them, prints both and the assignment
  acks     - two messages to partition 0 of "py" with acks ARG (0 or 1); prints the offsets each
             send learned
  seek     - reads partition 0 of "py" from ARG: end (then prints "ready" and waits for one
             message), an offset, or @MS (a timestamp, looked up with offsets_for_times)
  pair     - two members of group "pypair" on the 4-partition topic "py4" in one process: the
             first takes every partition, the second joins and they split them, the second leaves
             and the first takes them all back; prints each member's assignments
  admin    - KafkaAdminClient creates topic "pyadmin", lists and describes the groups, deletes it
"""
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

port, step = int(sys.argv[1]), sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else ""
DEADLINE_S = 20
servers = f"127.0.0.1:{port}"
tp = TopicPartition("py", 0)

if step == "produce":
    producer = KafkaProducer(bootstrap_servers=servers, acks="all")
    print("api_version", ".".join(map(str, producer.config["api_version"])))
    for index in range(5):
        producer.send("py", key=b"k%d" % index, value=b"v%d" % index, partition=0)
    producer.flush()
    producer.close()
elif step == "consume":
    consumer = KafkaConsumer(bootstrap_servers=servers, consumer_timeout_ms=2000, auto_offset_reset="earliest")
    consumer.assign([tp])
    for message in consumer:
        print(message.offset, message.key.decode(), message.value.decode())
    consumer.close()
elif step == "commit":
    consumer = KafkaConsumer(bootstrap_servers=servers, group_id="pyg", enable_auto_commit=False, consumer_timeout_ms=2000, auto_offset_reset="earliest")
    consumer.assign([tp])
    print("read", " ".join(str(message.offset) for message in consumer))
    consumer.commit()
    print("committed", consumer.committed(tp))
    consumer.close()
elif step == "group":
    consumer = KafkaConsumer(bootstrap_servers=servers, group_id="pymembers", enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500)
    consumer.subscribe(["py"])
    offsets = []
    deadline = time.monotonic() + 20
    while len(offsets) < 5 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            offsets.extend(record.offset for record in records)
    print("assigned", " ".join(sorted("%s/%d" % (each.topic, each.partition) for each in consumer.assignment())))
    print("read", " ".join(map(str, offsets)))
    consumer.commit()
    print("committed", consumer.committed(tp))
    consumer.close()
elif step == "acks":
    for acks in [int(arg)]:
        producer = KafkaProducer(bootstrap_servers=servers, acks=acks)
        sent = [producer.send("py", key=b"k", value=b"acks=%d %d" % (acks, index), partition=0) for index in range(2)]
        producer.flush()
        print("acks=%d" % acks, " ".join(str(future.get(10).offset) for future in sent))
        producer.close()
elif step == "seek":
    consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    consumer.assign([tp])
    if arg == "end":
        consumer.seek_to_end(tp)
        consumer.position(tp)  # resolves the end offset now (ListOffsets), before "ready"
        print("ready", flush=True)
        wanted = 1
    else:
        if arg.startswith("@"):
            consumer.seek(tp, consumer.offsets_for_times({tp: int(arg[1:])})[tp].offset)
        else:
            consumer.seek(tp, int(arg))
        wanted = consumer.end_offsets([tp])[tp] - consumer.position(tp)
    read = []
    deadline = time.monotonic() + DEADLINE_S
    while len(read) < wanted and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            read.extend(records)
    for record in read[:wanted]:
        print(record.offset, record.value.decode())
    consumer.close()
elif step == "pair":
    # Each member polls in its own thread: a member's JoinGroup blocks its poll until every
    # member has joined, so one thread polling both would wait for itself.
    events = []

    class Member(threading.Thread):
        def __init__(self, name):
            super().__init__()
            self.name_ = name
            self.consumer = KafkaConsumer(bootstrap_servers=servers, group_id="pypair", client_id=name, session_timeout_ms=6000, heartbeat_interval_ms=200, auto_offset_reset="earliest")
            self.consumer.subscribe(["py4"])
            self.stopping = threading.Event()
            self.assigned = ""

        def run(self):
            while not self.stopping.is_set():
                self.consumer.poll(timeout_ms=50)
                now = ",".join(sorted("%s/%d" % (each.topic, each.partition) for each in self.consumer.assignment()))
                if now != self.assigned:
                    self.assigned = now
                    if now:
                        events.append("%s %s" % (self.name_, now))
            self.consumer.close()

        def stop(self):
            self.stopping.set()
            self.join(DEADLINE_S)

    def wait_for(condition):
        deadline = time.monotonic() + DEADLINE_S
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)

    first = Member("first")
    first.start()
    wait_for(lambda: first.assigned.count(",") == 3)
    second = Member("second")
    second.start()
    wait_for(lambda: first.assigned.count(",") == 1 and second.assigned.count(",") == 1)
    second.stop()
    wait_for(lambda: first.assigned.count(",") == 3)
    first.stop()
    print("\n".join(sorted(events, key=lambda event: event.split(" ")[0] != "first")))
elif step == "admin":
    admin = KafkaAdminClient(bootstrap_servers=servers)
    admin.create_topics([NewTopic("pyadmin", num_partitions=3, replication_factor=1)])
    print("created pyadmin")
    member = KafkaConsumer(bootstrap_servers=servers, group_id="pyadmin-group", session_timeout_ms=6000, heartbeat_interval_ms=200)
    member.subscribe(["pyadmin"])
    deadline = time.monotonic() + DEADLINE_S
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(timeout_ms=100)
    for group, protocol_type in sorted(admin.list_consumer_groups()):
        print("listed", group, protocol_type)
    for described in admin.describe_consumer_groups(["pyadmin-group"]):
        print("described", described.group, described.state, described.protocol_type, described.protocol, len(described.members))
    member.close()
    admin.delete_topics(["pyadmin"])
    print("deleted pyadmin")
    admin.close()
