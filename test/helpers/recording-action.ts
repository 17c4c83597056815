import type { Action } from '../../src/actions/action.js';
import type { Decision } from '../../src/core/types.js';

/** A test double of an action: records every call; can be told to fail its next calls. */
export interface RecordingAction extends Action {
  /** Every call, in order, with the targets of its batch. */
  readonly calls: { op: 'start' | 'apply' | 'revert' | 'flush' | 'close'; targets: string[] }[];
  /** Targets applied and not reverted: what a firewall would hold. */
  readonly held: Set<string>;
  /** The next `n` apply/revert calls reject. */
  failNext(n: number): void;
}

export function recordingAction(name = 'recorder', scope: 'all' | 'local' = 'all'): RecordingAction {
  const calls: RecordingAction['calls'] = [];
  const held = new Set<string>();
  let failures = 0;
  const maybeFail = () => {
    if (failures > 0) {
      failures--;
      throw new Error('simulated action failure');
    }
  };
  return {
    name,
    kind: 'test',
    scope,
    calls,
    held,
    failNext(n) {
      failures = n;
    },
    async start() {
      calls.push({ op: 'start', targets: [] });
    },
    async apply(decisions: readonly Decision[]) {
      const targets = decisions.map((d) => d.target);
      calls.push({ op: 'apply', targets });
      maybeFail();
      for (const target of targets) held.add(target);
    },
    async revert(decisions: readonly Decision[]) {
      const targets = decisions.map((d) => d.target);
      calls.push({ op: 'revert', targets });
      maybeFail();
      for (const target of targets) held.delete(target);
    },
    async flush() {
      calls.push({ op: 'flush', targets: [...held] });
      held.clear();
    },
    async close() {
      calls.push({ op: 'close', targets: [] });
    },
  };
}
