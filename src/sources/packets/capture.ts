import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ErrorCodes, PortcullisError } from '../../core/errors.js';
import { linkTypeFromName } from './decode.js';

/**
 * The `pcap` npm package's native binding, as this module uses it. Only the binding: its JS
 * wrapper (`pcap.js`) starts a libuv poll handle that only a packet arriving after `close()` can
 * stop, so a quiet interface keeps the process alive forever. Here the capture is read on a timer
 * instead (non-blocking `dispatch`), and nothing of the binding holds the event loop.
 */
export interface PcapBinding {
  PcapSession: new () => NativeSession;
  lib_version(): string;
}

/** The methods of the binding's `PcapSession` this module calls (see `pcap_session.cc`). */
export interface NativeSession {
  open_live(
    device: string,
    filter: string,
    bufferSize: number,
    snapLength: number,
    outfile: string,
    onPacket: () => void,
    monitor: boolean,
    bufferTimeoutMs: number,
    onWarning: (message: string) => void,
    promiscuous: boolean,
  ): string;
  /**
   * Reads packets (non-blocking) one `pcap_dispatch(1)` at a time until the ring is empty, and
   * returns the last call's result: 0 once the ring is empty (whether it read packets or not),
   * -1 on error, -2 once closed (released). It does not return while packets arrive faster than
   * they are handled.
   */
  dispatch(buffer: Buffer, header: Buffer): number;
  /**
   * `pcap_breakloop`, and nothing else: the binding has no way to call `pcap_close` directly (its
   * destructor is empty). The next `dispatch` that sees a packet returns -2 having closed the
   * handle; in non-blocking mode libpcap only checks the break flag with a packet in hand.
   */
  close(): void;
  stats(): { ps_recv: number; ps_drop: number; ps_ifdrop: number };
}

/** Loads the binding; throws what `require` throws. Injected by tests. */
export type PcapLoader = () => PcapBinding;

/** Loads `pcap` lazily (it is an optional dependency), through `createRequire`: it is CommonJS. */
export const loadPcapBinding: PcapLoader = () => {
  const require = createRequire(import.meta.url);
  // The package first: a missing package and a missing libpcap are told apart by its error.
  const main = require.resolve('pcap');
  require('pcap');
  return require(join(dirname(main), 'build', 'Release', 'pcap_binding.node')) as PcapBinding;
};

/** Why a capture is not running: each one has its own remedy. */
export type CaptureProblem = 'module' | 'libpcap' | 'permission' | 'interface' | 'filter' | 'other';

const SETCAP = 'setcap cap_net_raw,cap_net_admin+eip $(which node)';

/** The capture could not start; `help` says exactly what to install or grant. */
export class CaptureError extends PortcullisError {
  readonly problem: CaptureProblem;

  constructor(problem: CaptureProblem, message: string, help: string, cause?: unknown) {
    super(ErrorCodes.PACKET_CAPTURE, `${message}; ${help}`, { cause, help });
    this.name = 'CaptureError';
    this.problem = problem;
  }
}

/** Loads the binding or throws a {@link CaptureError} naming the package to install. */
export function loadBinding(loader: PcapLoader): PcapBinding {
  try {
    return loader();
  } catch (error) {
    throw classifyLoadError(error);
  }
}

/** What a failed `require('pcap')` means for the operator. */
export function classifyLoadError(error: unknown): CaptureError {
  const message = String((error as Error)?.message ?? error);
  const code = (error as NodeJS.ErrnoException)?.code;
  if (/libpcap|cannot open shared object/i.test(message)) {
    return new CaptureError(
      'libpcap',
      `the packet watcher needs libpcap, which is not installed (${firstLine(message)})`,
      'install it: apt-get install libpcap0.8 (then npm rebuild pcap)',
      error,
    );
  }
  if (code === 'MODULE_NOT_FOUND' && /['"]pcap['"]/.test(message)) {
    return new CaptureError(
      'module',
      'the packet watcher needs the optional dependency "pcap", which is not installed',
      'install libpcap and build it: apt-get install libpcap0.8 libpcap-dev && npm install pcap (or npm rebuild pcap)',
      error,
    );
  }
  return new CaptureError(
    'module',
    `the "pcap" module could not be loaded (${firstLine(message)})`,
    'rebuild it for this Node.js: apt-get install libpcap0.8 libpcap-dev && npm rebuild pcap',
    error,
  );
}

/** What a failed open (`pcap_create`, `pcap_activate`, `pcap_compile`) means for the operator. */
export function classifyOpenError(
  error: unknown,
  device: string,
  filter: string,
  where: string,
): CaptureError {
  const message = firstLine(String((error as Error)?.message ?? error));
  if (/permission|not permitted|EPERM|EACCES/i.test(message)) {
    return new CaptureError(
      'permission',
      `${where}: no permission to capture on ${JSON.stringify(device)} (${message})`,
      `run portcullis as root or grant node the capture capabilities: ${SETCAP}`,
      error,
    );
  }
  if (/no such device|doesn't exist|does not exist|not found|no suitable device/i.test(message)) {
    return new CaptureError(
      'interface',
      `${where}.interface: no interface named ${JSON.stringify(device)} (${message})`,
      'name an existing interface (ip link) or "any"; a SIGHUP reload tries again',
      error,
    );
  }
  if (/not up|is down/i.test(message)) {
    return new CaptureError(
      'interface',
      `${where}.interface: ${JSON.stringify(device)} is down (${message})`,
      `bring it up (ip link set ${device} up), then reload (SIGHUP)`,
      error,
    );
  }
  if (filter !== '' && /syntax|illegal|unknown|parse|expression|filter|invalid/i.test(message)) {
    return new CaptureError(
      'filter',
      `${where}.filter: libpcap refused the BPF filter ${JSON.stringify(filter)} (${message})`,
      'write it as tcpdump would take it, e.g. "tcp or udp or icmp"',
      error,
    );
  }
  return new CaptureError(
    'other',
    `${where}: cannot capture on ${JSON.stringify(device)} (${message})`,
    'check the interface and the filter; a SIGHUP reload tries again',
    error,
  );
}

export interface CaptureOptions {
  /** An interface name, or `any`. */
  device: string;
  /** A BPF filter (tcpdump syntax); `''`: every packet. */
  filter: string;
  /** The kernel ring buffer, bytes. */
  bufferSize: number;
  /** Bytes kept of each packet (headers only need about 96). */
  snapLength: number;
  /** How often the ring is read, ms; also libpcap's block timeout. */
  pollIntervalMs: number;
  /** What errors call the watcher (`packets.edge`). */
  where: string;
  /**
   * Called for every packet, synchronously: the frame is `buffer[0, caplen)` (overwritten by the
   * next packet), `wireLength` its length on the wire, `timeMs` the kernel's capture time (ms
   * since the epoch, from the pcap header).
   */
  onPacket: (buffer: Buffer, caplen: number, wireLength: number, timeMs: number) => void;
  /**
   * Called after each poll with what the read returned: 0 once the ring is empty (not a count of
   * packets: the binding returns its last `pcap_dispatch` result; count them in `onPacket`), -1
   * on a read error.
   */
  onPoll: (result: number) => void;
  /** libpcap's warnings (`pcap_lookupnet` on an interface without IPv4, ...). */
  onWarning?: (message: string) => void;
}

/** Kernel counters of a capture (`pcap_stats`). */
export interface CaptureStats {
  /** Packets the filter passed. */
  received: number;
  /** Dropped because the ring buffer was full: the watcher did not keep up. */
  dropped: number;
  /** Dropped by the interface or its driver. */
  interfaceDropped: number;
}

/** A closed handle not yet released is read again after 1 s, then twice as long each time up to this. */
const RELEASE_MAX_DELAY_MS = 60_000;

/**
 * A running capture on one interface, read on a timer. `close()` is synchronous, idempotent and
 * leaves nothing that holds the event loop: libpcap releases a handle only inside a read that
 * sees a packet after the break, so a quiet interface gets an unref'd retry timer (1 s, doubling
 * to 60 s, until it is released, however long that takes) instead of a hang at exit.
 */
export class Capture {
  readonly linkType: number;
  readonly linkName: string;
  readonly #session: NativeSession;
  readonly #buffer: Buffer;
  readonly #header: Buffer;
  readonly #options: CaptureOptions;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #released = false;

  constructor(binding: PcapBinding, options: CaptureOptions) {
    this.#options = options;
    this.#buffer = Buffer.alloc(options.snapLength);
    this.#header = Buffer.alloc(16);
    const header = this.#header;
    const buffer = this.#buffer;
    const onPacket = options.onPacket;
    let session: NativeSession;
    try {
      session = new binding.PcapSession();
      this.linkName = session.open_live(
        options.device,
        options.filter,
        options.bufferSize,
        options.snapLength,
        '',
        // The header: the timestamp's seconds and microseconds (low 32 bits each), caplen, len.
        () => {
          if (!this.#closed)
            onPacket(
              buffer,
              header.readUInt32LE(8),
              header.readUInt32LE(12),
              header.readUInt32LE(0) * 1_000 + Math.floor(header.readUInt32LE(4) / 1_000),
            );
        },
        false,
        options.pollIntervalMs,
        (message: string) => options.onWarning?.(message),
        false,
      );
    } catch (error) {
      throw classifyOpenError(error, options.device, options.filter, options.where);
    }
    this.#session = session;
    this.linkType = linkTypeFromName(this.linkName);
    this.#timer = setInterval(() => this.poll(), options.pollIntervalMs);
  }

  /** Reads what the ring holds now; what the read returned (0: ring emptied, -1: read error). */
  poll(): number {
    if (this.#closed) return 0;
    const count = this.#session.dispatch(this.#buffer, this.#header);
    if (count === -2) {
      // Released under us (cannot happen before close): nothing more to read.
      this.#released = true;
      this.close();
      return 0;
    }
    this.#options.onPoll(count);
    return count;
  }

  /** Kernel counters; `undefined` once closed. */
  stats(): CaptureStats | undefined {
    if (this.#closed) return undefined;
    try {
      const s = this.#session.stats();
      return { received: s.ps_recv, dropped: s.ps_drop, interfaceDropped: s.ps_ifdrop };
    } catch {
      return undefined;
    }
  }

  /** Whether libpcap has let go of the handle (its socket and ring closed). */
  get released(): boolean {
    return this.#released;
  }

  /** Stops reading and releases the handle (at once, or at the first packet after). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#released) return;
    this.#session.close();
    if (this.#tryRelease()) return;
    const retry = (delayMs: number) => {
      const timer = setTimeout(() => {
        if (!this.#tryRelease()) retry(Math.min(delayMs * 2, RELEASE_MAX_DELAY_MS));
      }, delayMs);
      timer.unref();
    };
    retry(1_000);
  }

  #tryRelease(): boolean {
    // After the break, a read that finds a packet returns -2 having closed the handle; packets
    // it reads on the way go to a callback that ignores them (`#closed`). A read error (-1: the
    // interface went away) releases nothing: keep trying, a packet may still come.
    if (this.#session.dispatch(this.#buffer, this.#header) === -2) this.#released = true;
    return this.#released;
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
