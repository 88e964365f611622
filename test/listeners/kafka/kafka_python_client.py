"""kafka-python 2.0.2 (Debian python3-kafka), unmodified, against Runnel's Kafka listener.

Usage: kafka_python_client.py PORT STEP
  produce  - five keyed messages to topic "py"; prints the api_version the client inferred
  consume  - reads partition 0 of "py" from the earliest offset (assign mode), prints offset key value
  commit   - group "pyg" (assign mode): reads what is after its committed offset, commits, prints both
  group    - group "pymembers" (subscribe, a real group member): reads 5 messages from where the
             group's commit left off, commits them, prints both and the assignment
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

port, step = int(sys.argv[1]), sys.argv[2]
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
