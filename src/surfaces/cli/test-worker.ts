import { parentPort, workerData } from 'node:worker_threads';
import { pieceJob, piecesOf, takePieces, type WorkerJob, type WorkerMessage } from './test-parallel.js';
import { loadTestFilter, runRange } from './test-range.js';

/**
 * A worker of `portcullis test --jobs N`: loads the filter from the command line's spec and
 * options (its own, with its own DNS cache), then takes the next piece of the file not yet taken
 * until none is left, and posts each piece's partial report with the sessions it held at the
 * piece's start and end. See `test-parallel.ts`.
 */

const job = workerData as WorkerJob;
const port = parentPort as NonNullable<typeof parentPort>;
const post = (message: WorkerMessage) => port.postMessage(message);

const loaded = loadTestFilter(job.spec, job.filterOptions, {
  onDnsWarning: (name, ips) => post({ type: 'warning', name, ips }),
});
const pieces = piecesOf(loaded.filter, job.plans);
let unreported = 0;
const onBytes = (bytes: number) => {
  unreported += bytes;
  if (unreported >= 8 * 1024 * 1024) {
    post({ type: 'progress', bytes: unreported });
    unreported = 0;
  }
};
await takePieces(loaded.filter, job.plans, job.thread, job.next, async (index) => {
  const result = await runRange(loaded, pieceJob(job.base, pieces, index), onBytes);
  post({ type: 'done', index, result });
});
if (unreported > 0) post({ type: 'progress', bytes: unreported });
