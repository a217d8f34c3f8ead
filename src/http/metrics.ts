import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ChatObserver } from '../core/chat.js';
import type { Outcome } from '../core/answer.js';

const OUTCOMES: readonly Outcome[] = ['data', 'timeout', 'reset', 'gap'];

/**
 * The service's Prometheus metrics, in a registry of their own so that two
 * servers in one process (as in tests) never share counters.
 */
export class Metrics implements ChatObserver {
  readonly registry = new Registry();
  private readonly accepted_: Counter;
  private readonly answerCounts: Record<Outcome, number> = { data: 0, timeout: 0, reset: 0, gap: 0 };
  private readonly wakeLatency: Histogram;
  private readonly syncRooms: Histogram;
  private readonly abandonedAfter: Histogram;

  /** `parked`, `syncsHeld`, `streamsOpen` and `usersOnline` are read at scrape time, so holding a poll costs the metrics nothing. */
  constructor(parked: () => number, { processMetrics = true, syncsHeld = (): number => 0, streamsOpen = (): number => 0, usersOnline = (): number => 0 } = {}) {
    new Gauge({
      name: 'chat_streams_open',
      help: 'Streams (GET /api/stream) open; one waiting for news is counted in chat_parked_polls too',
      registers: [this.registry],
      collect() {
        this.set(streamsOpen());
      },
    });
    new Gauge({
      name: 'chat_users_online',
      help: 'Signed-in users with a poll or sync held on this instance, or ended less than the online window ago',
      registers: [this.registry],
      collect() {
        this.set(usersOnline());
      },
    });
    new Gauge({
      name: 'chat_syncs_held',
      help: 'Syncs (POST /api/sync) currently held, each counted once in chat_parked_polls too',
      registers: [this.registry],
      collect() {
        this.set(syncsHeld());
      },
    });
    this.syncRooms = new Histogram({
      name: 'chat_sync_rooms',
      help: 'Rooms per sync started',
      buckets: [1, 2, 5, 10, 20, 50, 100],
      registers: [this.registry],
    });
    new Gauge({
      name: 'chat_parked_polls',
      help: 'Polls currently held waiting for a message',
      registers: [this.registry],
      collect() {
        this.set(parked());
      },
    });
    this.accepted_ = new Counter({
      name: 'chat_messages_accepted_total',
      help: 'Messages stored (duplicates of an earlier clientMsgId not counted)',
      registers: [this.registry],
    });
    // Counted in plain numbers on the hot path and handed to the counter at
    // scrape time: a labelled inc per answer costs more than the answer's bookkeeping.
    const counts = this.answerCounts;
    const reported: Record<Outcome, number> = { data: 0, timeout: 0, reset: 0, gap: 0 };
    new Counter({
      name: 'chat_poll_answers_total',
      help: 'Answers to polls, joins and history pages, by outcome',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        for (const outcome of OUTCOMES) {
          this.inc({ outcome }, counts[outcome] - reported[outcome]);
          reported[outcome] = counts[outcome];
        }
      },
    });
    this.wakeLatency = new Histogram({
      name: 'chat_wakeup_latency_seconds',
      help: 'From a change signal to the answers of the polls it woke, once per group of polls at one cursor',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [this.registry],
    });
    this.abandonedAfter = new Histogram({
      name: 'chat_poll_abandoned_seconds',
      help: 'How long polls and syncs had been held when their client went away before the answer; a peak at T says something on the path cuts held requests at T',
      buckets: [1, 2, 5, 10, 15, 20, 25, 30, 45, 60, 90, 120],
      registers: [this.registry],
    });
    if (processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  accepted(): void {
    this.accepted_.inc();
  }

  answered(outcome: Outcome, count: number): void {
    this.answerCounts[outcome] += count;
  }

  woke(seconds: number): void {
    this.wakeLatency.observe(seconds);
  }

  abandoned(seconds: number): void {
    this.abandonedAfter.observe(seconds);
  }

  synced(rooms: number): void {
    this.syncRooms.observe(rooms);
  }
}
