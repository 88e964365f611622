/**
 * @module broker/group-runtime
 * The group coordinator as the broker runs it: its options from the broker's configuration,
 * partition counts read from the log, the monotonic clock, and the one timer that expires
 * sessions. Everything else about groups is sans-IO in group-coordinator.ts.
 */
import type { Config } from "../config.ts";
import type { LogManager } from "../log/api.ts";
import { WIRE_LIMITS } from "../protocol/messages.ts";
import { DeadlineTimer } from "./deadline-timer.ts";
import { GROUP_DEFAULTS, GroupCoordinator } from "./group-coordinator.ts";
import { HeartbeatWaits } from "./heartbeat-waits.ts";

export interface GroupRuntime {
  readonly coordinator: GroupCoordinator;
  /** Heartbeats parked until their member has news (heartbeat `waitMs`). */
  readonly waits: HeartbeatWaits;
  /** Stops the session timer and answers parked heartbeats (shutdown); membership is soft state and is simply dropped. */
  stop(): void;
}

/** Monotonic milliseconds: a wall-clock step must not expire every session at once. */
function nowMs(): number {
  return performance.now();
}

export function startGroupRuntime(config: Config, log: LogManager): GroupRuntime {
  let timer: DeadlineTimer | null = null;
  const waits = new HeartbeatWaits(nowMs);
  const coordinator = new GroupCoordinator({
    nowMs,
    onMemberNews: (groupId, memberId) => waits.news(groupId, memberId),
    partitionCountOf: (topic) => (log.hasTopic(topic) ? log.describeTopic(topic).partitions.length : 0),
    onDeadline: (deadlineMs) => timer?.armFor(deadlineMs),
    groupsMax: config.groupsMax,
    membersPerGroupMax: config.groupMembersMax,
    topicsPerGroupMax: WIRE_LIMITS.groupTopicsMax,
    sessionTimeoutMsMin: config.groupSessionTimeoutMsMin,
    sessionTimeoutMsMax: config.groupSessionTimeoutMsMax,
    sessionTimeoutMsDefault: GROUP_DEFAULTS.sessionTimeoutMsDefault,
    heartbeatIntervalMs: config.groupHeartbeatIntervalMs,
    pendingHeartbeatIntervalMs: GROUP_DEFAULTS.pendingHeartbeatIntervalMs,
    // Topic changes reach the members at their next heartbeats; a read per group per interval bounds the cost.
    partitionCountCheckIntervalMs: Math.min(1_000, config.groupHeartbeatIntervalMs),
  });
  timer = new DeadlineTimer(() => coordinator.expire(), nowMs);
  return {
    coordinator,
    waits,
    stop: () => {
      timer?.disarm();
      timer = null;
      waits.wakeAll();
    },
  };
}
