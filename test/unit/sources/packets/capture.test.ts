import { afterEach, describe, expect, it, vi } from 'vitest';
import { Capture, type PcapBinding } from '../../../../src/sources/packets/capture.js';

// libpcap releases a broken (pcap_breakloop) non-blocking handle only inside a read that finds a
// packet; the binding has no other way to pcap_close it. A quiet interface must not leak the
// handle (its socket and ring) after a fixed number of tries: it is tried again until released.

afterEach(() => {
  vi.useRealTimers();
});

function quietBinding() {
  const state = { dispatches: 0, packetArrived: false, broken: false, released: false, readError: false };
  class Session {
    open_live() {
      return 'LINKTYPE_ETHERNET';
    }
    dispatch(): number {
      if (state.released) throw new Error('dispatch after pcap_close: a use after free');
      state.dispatches++;
      if (state.readError) return -1;
      if (state.broken && state.packetArrived) {
        state.released = true;
        return -2;
      }
      return 0;
    }
    close() {
      state.broken = true;
    }
    stats() {
      return { ps_recv: 0, ps_drop: 0, ps_ifdrop: 0 };
    }
  }
  const binding: PcapBinding = { PcapSession: Session as never, lib_version: () => 'fake' };
  return { state, binding };
}

const options = {
  device: 'eth9',
  filter: '',
  bufferSize: 65_536,
  snapLength: 96,
  pollIntervalMs: 10,
  where: 'packets.edge',
  onPacket: () => {},
  onPoll: () => {},
};

describe('Capture.close() on a quiet interface', () => {
  it('keeps trying to release the handle, backing off, for as long as it takes (hours)', () => {
    vi.useFakeTimers();
    const { state, binding } = quietBinding();
    const capture = new Capture(binding, options);
    capture.close();
    expect(capture.released).toBe(false);
    const afterClose = state.dispatches;
    vi.advanceTimersByTime(3 * 3_600_000);
    // Backing off to once a minute: about 180 reads in three hours, not one every second.
    const tries = state.dispatches - afterClose;
    expect(tries).toBeGreaterThan(150);
    expect(tries).toBeLessThan(250);
    // A read error (the interface went away for a while) is no reason to give up either.
    state.readError = true;
    vi.advanceTimersByTime(600_000);
    state.readError = false;
    state.packetArrived = true;
    vi.advanceTimersByTime(61_000);
    expect(capture.released).toBe(true);
    // Released: no read after pcap_close (the session throws if one came), and no timer left.
    const final = state.dispatches;
    vi.advanceTimersByTime(3_600_000);
    expect(state.dispatches).toBe(final);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('releases at once when a packet is already waiting', () => {
    vi.useFakeTimers();
    const { state, binding } = quietBinding();
    const capture = new Capture(binding, options);
    state.packetArrived = true;
    capture.close();
    expect(capture.released).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
