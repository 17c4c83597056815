import { describe, expect, it } from 'vitest';
import { BatchQueue, type LineBatch } from '../../../../src/sources/log/batch-queue.js';

function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const batch = (line: string): LineBatch => ({ lines: [line], source: 'test' });
// Not a sleep: one macrotask turn, after which every callback of an already-settled promise has run.
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('BatchQueue', () => {
  it('commits marks in order, only once every earlier batch has settled', async () => {
    const pending = [deferred(), deferred(), deferred()];
    let i = 0;
    const commits: number[] = [];
    const queue = new BatchQueue<number>(() => pending[i++]?.promise, {
      maxInFlight: 10,
      onCommit: (mark) => commits.push(mark),
    });
    queue.push(batch('a'), 1);
    queue.push(batch('b'), 2);
    queue.push(batch('c'), 3);
    pending[2]?.resolve();
    pending[1]?.resolve();
    await tick();
    expect(commits).toEqual([]);
    pending[0]?.resolve();
    await tick();
    expect(commits).toEqual([3]);
    expect(queue.inFlight).toBe(0);
  });

  it('commits synchronous handlers at once and marks after them', () => {
    const commits: string[] = [];
    const queue = new BatchQueue<string>(() => {}, {
      maxInFlight: 1,
      onCommit: (mark) => commits.push(mark),
    });
    expect(queue.push(batch('a'), 'a')).toBeUndefined();
    queue.mark('start');
    expect(commits).toEqual(['a', 'start']);
  });

  it('asks the reader to wait when maxInFlight batches are pending', async () => {
    const first = deferred();
    const queue = new BatchQueue<number>(() => first.promise, { maxInFlight: 2 });
    expect(queue.push(batch('a'), 1)).toBeUndefined();
    const wait = queue.push(batch('b'), 2);
    expect(wait).toBeInstanceOf(Promise);
    let released = false;
    void wait?.then(() => {
      released = true;
    });
    await tick();
    expect(released).toBe(false);
    first.resolve();
    await tick();
    expect(released).toBe(true);
  });

  it('stops committing after a batch fails (it will be read again after a restart)', async () => {
    const commits: number[] = [];
    const errors: unknown[] = [];
    let n = 0;
    const queue = new BatchQueue<number>(
      () => {
        n++;
        if (n === 2) throw new Error('guard closed');
        return Promise.resolve();
      },
      { maxInFlight: 10, onCommit: (mark) => commits.push(mark), onError: (error) => errors.push(error) },
    );
    queue.push(batch('a'), 1);
    queue.push(batch('b'), 2);
    queue.push(batch('c'), 3);
    await queue.drain();
    expect(commits).toEqual([1]);
    expect(errors).toHaveLength(1);
    expect(queue.failed).toBe(true);
  });
});
