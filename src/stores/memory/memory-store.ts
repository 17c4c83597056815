import { EventEmitter } from 'node:events';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import { FailureWindows } from '../../core/failure-windows.js';
import { type Decision, isActive } from '../../core/types.js';
import { mergeDecision } from '../merge-decision.js';
import type { FailureInput, FailureResult, LogPosition, Store, StoreEventMap } from '../store.js';

/** A store that lives and dies with the process. For tests and for `store: memory`. */
export class MemoryStore extends EventEmitter<StoreEventMap> implements Store {
  readonly kind = 'memory' as const;
  readonly shared = false;
  readonly #windows = new FailureWindows();
  readonly #decisions = new Map<string, Decision>();
  readonly #history: { target: string; jail: string; timeMs: number }[] = [];
  readonly #positions = new Map<string, LogPosition>();
  #closed = false;

  async open(): Promise<void> {
    this.#assertOpen();
  }

  async addFailure(input: FailureInput): Promise<FailureResult> {
    this.#assertOpen();
    return this.#windows.add(input);
  }

  async clearFailures(jail: string, key: string): Promise<void> {
    this.#windows.clear(jail, key);
  }

  async putDecision(decision: Decision): Promise<Decision> {
    this.#assertOpen();
    return this.#put(decision);
  }

  #put(decision: Decision): Decision {
    const stored = mergeDecision(this.#decisions.get(decision.target), decision);
    this.#decisions.set(decision.target, stored);
    if (decision.jail !== 'manual' && !decision.dryRun) {
      this.#history.push({ target: decision.target, jail: decision.jail, timeMs: decision.startedAt });
    }
    return stored;
  }

  async deleteDecision(target: string): Promise<Decision | undefined> {
    this.#assertOpen();
    return this.#delete(target);
  }

  #delete(target: string): Decision | undefined {
    const existing = this.#decisions.get(target);
    this.#decisions.delete(target);
    return existing;
  }

  async putDecisions(decisions: readonly Decision[]): Promise<Decision[]> {
    this.#assertOpen();
    return decisions.map((decision) => this.#put(decision));
  }

  async deleteDecisions(targets: readonly string[]): Promise<(Decision | undefined)[]> {
    this.#assertOpen();
    return targets.map((target) => this.#delete(target));
  }

  async loadDecisions(nowMs: number, onBatch: (batch: Decision[]) => void): Promise<number> {
    this.#assertOpen();
    const active = [...this.#decisions.values()].filter((d) => isActive(d.expiresAt, nowMs));
    if (active.length > 0) onBatch(active);
    return active.length;
  }

  async countBans(target: string, jail: string | null, sinceMs: number): Promise<number> {
    let count = 0;
    for (const entry of this.#history) {
      if (entry.target === target && entry.timeMs >= sinceMs && (jail === null || entry.jail === jail))
        count++;
    }
    return count;
  }

  async purge(nowMs: number, historyBeforeMs: number): Promise<void> {
    for (const [target, decision] of this.#decisions) {
      if (!isActive(decision.expiresAt, nowMs)) this.#decisions.delete(target);
    }
    const kept = this.#history.filter((entry) => entry.timeMs >= historyBeforeMs);
    this.#history.splice(0, this.#history.length, ...kept);
    this.#windows.prune(nowMs);
  }

  async getPosition(id: string): Promise<LogPosition | undefined> {
    return this.#positions.get(id);
  }

  async setPosition(id: string, position: LogPosition): Promise<void> {
    this.#positions.set(id, { ...position });
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new PortcullisError(ErrorCodes.CLOSED, 'the memory store is closed');
  }
}
