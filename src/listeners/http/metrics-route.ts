/**
 * @module listeners/http/metrics-route
 * `GET /metrics`: everything in Prometheus text, collected at scrape time. Counters the data
 * path bumps come from broker/metrics.ts and server/stats.ts; partition offsets and sizes, lag
 * and process figures are read here. Names follow Prometheus conventions: base units
 * (seconds, bytes), `_total` on counters, the standard `process_*` names for process figures.
 *
 * Cost: one describeTopic per topic and one lookup per committed offset, per scrape.
 */
import type { BrokerMetrics } from "../../broker/metrics.ts";
import type { BrokerContext } from "../../server/context.ts";
import type { BrokerView } from "./broker-view.ts";
import { describeQuietly, diskOf, groupLag } from "./inventory.ts";
import type { ProcessSampler } from "./process-sampler.ts";
import { Exposition } from "./prometheus.ts";

export function renderMetrics(view: BrokerView, sampler: ProcessSampler): string {
  const out = new Exposition();
  writeBrokerFamilies(out, view);
  writeProcessFamilies(out, sampler, view.startedAtMs);
  const context = view.context;
  if (context !== null) {
    writeConnectionFamilies(out, context);
    if (context.metrics !== null) writeRequestFamilies(out, context.metrics);
    writePartitionFamilies(out, context);
    writeGroupFamilies(out, view, context);
    writeIoFamilies(out, context);
  }
  return out.text();
}

function writeBrokerFamilies(out: Exposition, view: BrokerView): void {
  out.family("runnel_build_info", "gauge", "Always 1; the version is a label.").sample("runnel_build_info", { version: view.version }, 1);
  out.family("runnel_ready", "gauge", "1 when the log is recovered, the listeners are up and the broker is not shutting down.");
  out.sample("runnel_ready", {}, view.ready ? 1 : 0);
  out.family("runnel_uptime_seconds", "gauge", "Seconds since the broker process started the broker.");
  out.sample("runnel_uptime_seconds", {}, (Date.now() - view.startedAtMs) / 1000);
  const disk = diskOf(view.dataDir);
  if (disk !== null) {
    out.family("runnel_disk_total_bytes", "gauge", "Size of the file system holding the data directory.").sample("runnel_disk_total_bytes", {}, disk.totalBytes);
    out.family("runnel_disk_free_bytes", "gauge", "Bytes available to the broker on the file system holding the data directory.");
    out.sample("runnel_disk_free_bytes", {}, disk.freeBytes);
  }
}

function writeProcessFamilies(out: Exposition, sampler: ProcessSampler, startedAtMs: number): void {
  const figures = sampler.sample();
  out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.").sample("process_resident_memory_bytes", {}, figures.residentBytes);
  out.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  out.sample("process_cpu_seconds_total", {}, figures.cpuUserSeconds + figures.cpuSystemSeconds);
  out.family("process_cpu_user_seconds_total", "counter", "User CPU time spent in seconds.").sample("process_cpu_user_seconds_total", {}, figures.cpuUserSeconds);
  out.family("process_cpu_system_seconds_total", "counter", "System CPU time spent in seconds.").sample("process_cpu_system_seconds_total", {}, figures.cpuSystemSeconds);
  out.family("process_start_time_seconds", "gauge", "Start time of the broker since the Unix epoch in seconds.").sample("process_start_time_seconds", {}, Math.floor(startedAtMs / 1000));
  out.family("runnel_heap_used_bytes", "gauge", "JavaScript heap in use (JavaScriptCore).").sample("runnel_heap_used_bytes", {}, figures.heapUsedBytes);
  out.family("runnel_heap_size_bytes", "gauge", "JavaScript heap size, used and free (JavaScriptCore).").sample("runnel_heap_size_bytes", {}, figures.heapSizeBytes);
  out.family("runnel_array_buffers_bytes", "gauge", "Bytes behind live ArrayBuffers, outside the JavaScript heap.");
  out.sample("runnel_array_buffers_bytes", {}, figures.arrayBuffersBytes);
  out.family("runnel_event_loop_lag_seconds", "gauge", "How late a 20 ms timer fired, over the last minute (GC pauses show here; Bun reports no GC pause figure).");
  const lag = figures.eventLoopLag;
  out.sample("runnel_event_loop_lag_seconds", { stat: "mean" }, lag.meanSeconds).sample("runnel_event_loop_lag_seconds", { stat: "p50" }, lag.p50Seconds);
  out.sample("runnel_event_loop_lag_seconds", { stat: "p99" }, lag.p99Seconds).sample("runnel_event_loop_lag_seconds", { stat: "max" }, lag.maxSeconds);
}

function writeConnectionFamilies(out: Exposition, context: BrokerContext): void {
  const stats = context.stats;
  const listener = { listener: "native" };
  out.family("runnel_connections_open", "gauge", "Open client connections.").sample("runnel_connections_open", listener, stats.connectionsOpen);
  out.family("runnel_connections_accepted_total", "counter", "Connections accepted.").sample("runnel_connections_accepted_total", listener, stats.connectionsAccepted);
  out.family("runnel_connections_rejected_total", "counter", "Connections refused at the connection limit or during shutdown.");
  out.sample("runnel_connections_rejected_total", listener, stats.connectionsRejected);
  out.family("runnel_fetches_waiting", "gauge", "Long-polling fetches parked now.").sample("runnel_fetches_waiting", {}, context.notifier.size);
  out.family("runnel_buffered_bytes", "gauge", "Bytes held for clients: partial frames and queued answers.").sample("runnel_buffered_bytes", {}, context.memory.usedBytes);
  out.family("runnel_buffered_bytes_max", "gauge", "The buffered-bytes budget.").sample("runnel_buffered_bytes_max", {}, context.memory.bytesMax);
}

function writeRequestFamilies(out: Exposition, metrics: BrokerMetrics): void {
  const listeners = [metrics.native, metrics.kafka];
  out.family("runnel_requests_total", "counter", "Requests answered, per listener and operation.");
  for (const listener of listeners) {
    for (const [op, figures] of listener.byOperation) out.sample("runnel_requests_total", { listener: listener.listener, op }, figures.requests);
  }
  out.family("runnel_request_errors_total", "counter", "Requests answered with an error, per listener and operation.");
  for (const listener of listeners) {
    for (const [op, figures] of listener.byOperation) out.sample("runnel_request_errors_total", { listener: listener.listener, op }, figures.errors);
  }
  out.family("runnel_request_duration_seconds", "histogram", "Time from a request's decoding to its answer being ready, per listener and operation.");
  for (const listener of listeners) {
    for (const [op, figures] of listener.byOperation) out.histogram("runnel_request_duration_seconds", { listener: listener.listener, op }, figures.latency);
  }
  writeTopicTraffic(out, metrics);
  out.family("runnel_fdatasync_duration_seconds", "histogram", "fdatasync calls of the log (flushes and group commits).");
  out.histogram("runnel_fdatasync_duration_seconds", {}, metrics.fdatasync);
}

function writeTopicTraffic(out: Exposition, metrics: BrokerMetrics): void {
  const traffic = [...metrics.traffic.byTopic];
  const families = [
    ["runnel_topic_bytes_in_total", "Record bytes appended to the topic (duplicates excluded).", "bytesIn"],
    ["runnel_topic_messages_in_total", "Messages appended to the topic (duplicates excluded).", "messagesIn"],
    ["runnel_topic_bytes_out_total", "Record bytes of the topic handed to fetches.", "bytesOut"],
    ["runnel_topic_messages_out_total", "Messages of the topic handed to fetches, estimated from bytes out and the topic's bytes per message.", "messagesOut"],
  ] as const;
  for (const [name, help, field] of families) {
    out.family(name, "counter", help);
    for (const [topic, counters] of traffic) out.sample(name, { topic }, Math.round(counters[field]));
  }
}

function writePartitionFamilies(out: Exposition, context: BrokerContext): void {
  const topics = context.log.listTopics();
  const descriptions = topics.map((topic) => describeQuietly(context, topic)).filter((description) => description !== null);
  context.metrics?.traffic.forgetMissing((topic) => context.log.hasTopic(topic));
  const families = [
    ["runnel_partition_log_end_offset", "Offset the next appended message will get.", "nextOffset"],
    ["runnel_partition_log_start_offset", "First offset still in the log.", "logStartOffset"],
    ["runnel_partition_size_bytes", "Bytes of the partition's segments.", "sizeBytes"],
    ["runnel_partition_segments", "Segments of the partition.", "segmentCount"],
  ] as const;
  for (const [name, help, field] of families) {
    out.family(name, "gauge", help);
    for (const description of descriptions) {
      for (const info of description.partitions) out.sample(name, { topic: info.topic, partition: info.partition }, info[field]);
    }
  }
  updateMessagesPerByte(context, descriptions);
  out.family("runnel_log_index_memory_bytes", "gauge", "Heap bytes of segment indexes: the active segments' entries, sealed segments' block heads.");
  out.sample("runnel_log_index_memory_bytes", {}, context.log.indexMemoryBytes);
}

/** Gives the messages-out estimate a ratio for topics no produce has touched since start. */
function updateMessagesPerByte(context: BrokerContext, descriptions: ReadonlyArray<{ name: string; partitions: ReadonlyArray<{ sizeBytes: number; nextOffset: number; logStartOffset: number }> }>): void {
  const traffic = context.metrics?.traffic;
  if (traffic === undefined) return;
  for (const description of descriptions) {
    const counters = traffic.byTopic.get(description.name);
    if (counters === undefined) continue;
    let bytes = 0;
    let messages = 0;
    for (const partition of description.partitions) {
      bytes += partition.sizeBytes;
      messages += partition.nextOffset - partition.logStartOffset;
    }
    if (bytes > 0) counters.messagesPerByte = messages / bytes;
  }
}

function writeGroupFamilies(out: Exposition, view: BrokerView, context: BrokerContext): void {
  const groups = view.groups;
  if (groups === null) return;
  const lags = groups.groupNames().map((name) => groupLag(context, groups, name)).filter((lag) => lag !== null);
  out.family("runnel_group_committed_offset", "gauge", "The group's committed offset, per partition.");
  for (const group of lags) {
    for (const entry of group.partitions) out.sample("runnel_group_committed_offset", { group: group.name, topic: entry.topic, partition: entry.partition }, entry.committedOffset);
  }
  out.family("runnel_group_lag", "gauge", "Messages between the group's committed offset and the log end, per partition.");
  for (const group of lags) {
    for (const entry of group.partitions) out.sample("runnel_group_lag", { group: group.name, topic: entry.topic, partition: entry.partition }, entry.lag);
  }
  out.family("runnel_group_members", "gauge", "Members of the group (only groups whose membership a coordinator tracks).");
  for (const group of lags) if (group.members !== null) out.sample("runnel_group_members", { group: group.name }, group.members.length);
}

function writeIoFamilies(out: Exposition, context: BrokerContext): void {
  const stats = context.stats;
  out.family("runnel_bytes_received_total", "counter", "Bytes read from client sockets.").sample("runnel_bytes_received_total", { listener: "native" }, stats.bytesReceived);
  out.family("runnel_bytes_sent_total", "counter", "Bytes sent to clients, by how: sendfile (zero-copy records), copy (records read then written), write (response heads and messages), probe (sendfile's one-at-a-time writes after EAGAIN), gathered (small answers' records read and written with their head in one write).");
  out.sample("runnel_bytes_sent_total", { listener: "native", path: "sendfile" }, stats.bytesSentSendfile);
  out.sample("runnel_bytes_sent_total", { listener: "native", path: "copy" }, stats.bytesSentCopy);
  out.sample("runnel_bytes_sent_total", { listener: "native", path: "write" }, stats.bytesSentWrite);
  out.sample("runnel_bytes_sent_total", { listener: "native", path: "probe" }, stats.bytesSentProbe);
  out.sample("runnel_bytes_sent_total", { listener: "native", path: "gathered" }, stats.bytesSentGathered);
  out.family("runnel_batches_appended_total", "counter", "Record batches appended.").sample("runnel_batches_appended_total", {}, stats.batchesAppended);
  out.family("runnel_batches_duplicate_total", "counter", "Idempotent retries answered without appending.").sample("runnel_batches_duplicate_total", {}, stats.batchesDuplicate);
  out.family("runnel_frames_oversized_total", "counter", "Frames refused for their size.").sample("runnel_frames_oversized_total", {}, stats.framesOversized);
  const authentication = context.authenticator.counters;
  out.family("runnel_authentications_total", "counter", "Authentications on every listener, by result: success, failure (wrong password or unknown user, malformed exchange), throttled (refused unchecked: the address failed too often).");
  out.sample("runnel_authentications_total", { result: "success" }, authentication.successes);
  out.sample("runnel_authentications_total", { result: "failure" }, authentication.failures);
  out.sample("runnel_authentications_total", { result: "throttled" }, authentication.throttled);
}
