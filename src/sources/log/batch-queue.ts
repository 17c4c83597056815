/** Complete lines handed to a consumer in one call. */
export interface LineBatch {
  /** Decoded lines, without their `\n`. */
  readonly lines: readonly string[];
  /** Where they came from: a file path, or a command line for command sources. */
  readonly source: string;
}

/**
 * Receives lines. Return a promise when the work is asynchronous: a batch counts as handled (and
 * its file position may be saved) only once that promise settles. A rejection means "not handled":
 * positions stop advancing, so a restart reads the batch again rather than losing it.
 */
export type LineHandler = (batch: LineBatch) => void | PromiseLike<void>;

interface Entry<M> {
  settled: boolean;
  ok: boolean;
  mark: M | undefined;
  promise: Promise<void> | undefined;
}

/** Options of {@link BatchQueue}. */
export interface BatchQueueOptions<M> {
  /** Batches whose handler has not settled yet before `push()` makes the reader wait. */
  maxInFlight: number;
  /** Called in order with the mark of each batch once it and every batch before it succeeded. */
  onCommit?: (mark: M) => void;
  /** Called when a handler throws or rejects. */
  onError?: (error: unknown) => void;
}

/**
 * Runs a {@link LineHandler} with up to `maxInFlight` batches pending, and reports in order the
 * last batch before which everything was handled: this is what makes a saved log position safe.
 */
export class BatchQueue<M> {
  readonly #handler: LineHandler;
  readonly #options: BatchQueueOptions<M>;
  readonly #entries: Entry<M>[] = [];
  #failed = false;

  constructor(handler: LineHandler, options: BatchQueueOptions<M>) {
    this.#handler = handler;
    this.#options = options;
  }

  /** Batches handed to the handler and not yet settled. */
  get inFlight(): number {
    return this.#entries.length;
  }

  /** True once a handler failed; marks are no longer committed. */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * Hands a batch to the handler; `mark` is committed once it (and all before it) are handled.
   * Returns a promise to await when the queue is full (back-pressure), otherwise `undefined`.
   */
  push(batch: LineBatch, mark?: M): Promise<void> | undefined {
    const entry: Entry<M> = { settled: false, ok: true, mark, promise: undefined };
    let result: void | PromiseLike<void>;
    try {
      result = this.#handler(batch);
    } catch (error) {
      result = Promise.reject(error);
    }
    this.#entries.push(entry);
    if (result === undefined || typeof (result as PromiseLike<void>).then !== 'function') {
      entry.settled = true;
      this.#advance();
      return undefined;
    }
    entry.promise = Promise.resolve(result).then(
      () => this.#settle(entry, true),
      (error: unknown) => {
        this.#options.onError?.(error);
        this.#settle(entry, false);
      },
    );
    if (this.#entries.length < this.#options.maxInFlight) return undefined;
    return this.#entries[0]?.promise;
  }

  /** Commits `mark` after everything pushed so far (a file switch, the start offset). */
  mark(mark: M): void {
    this.#entries.push({ settled: true, ok: true, mark, promise: undefined });
    this.#advance();
  }

  /** Resolves when every batch pushed so far has settled. Never rejects. */
  async drain(): Promise<void> {
    while (this.#entries.length > 0) {
      const pending = this.#entries.find((entry) => !entry.settled);
      if (pending?.promise === undefined) break;
      await pending.promise;
    }
  }

  #settle(entry: Entry<M>, ok: boolean): void {
    entry.settled = true;
    entry.ok = ok;
    this.#advance();
  }

  #advance(): void {
    let mark: M | undefined;
    let committed = false;
    while (this.#entries[0]?.settled) {
      const entry = this.#entries.shift() as Entry<M>;
      if (!entry.ok) this.#failed = true;
      if (!this.#failed && entry.mark !== undefined) {
        mark = entry.mark;
        committed = true;
      }
    }
    if (committed) this.#options.onCommit?.(mark as M);
  }
}
