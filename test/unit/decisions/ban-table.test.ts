import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../src/core/clock.js';
import { BanTable } from '../../../src/decisions/ban-table.js';

describe('BanTable', () => {
  it('enforces exact IPv4 bans in any textual form and not their neighbours', () => {
    const table = new BanTable(createManualClock());
    table.add('192.0.2.7', 'sshd', null);
    expect(table.has('192.0.2.7')).toBe(true);
    expect(table.has('::ffff:192.0.2.7')).toBe(true);
    expect(table.has('[::ffff:c000:207]')).toBe(true);
    expect(table.has('192.0.2.8')).toBe(false);
    expect(table.has('garbage')).toBe(false);
    expect(table.has('')).toBe(false);
  });

  it('enforces IPv4 and IPv6 ranges and IPv6 /64 client bans', () => {
    const table = new BanTable(createManualClock());
    table.add('10.0.0.0/8', 'manual', null);
    table.add('2001:db8:1:2::/64', 'web', null);
    table.add('2001:db8:ff00::/40', 'manual', null);
    table.add('2001:db8:9::1', 'manual', null);
    expect(table.has('10.200.3.4')).toBe(true);
    expect(table.has('11.0.0.1')).toBe(false);
    expect(table.has('2001:db8:1:2:aaaa::1')).toBe(true);
    expect(table.has('2001:db8:1:3::1')).toBe(false);
    expect(table.has('2001:db8:ff12::1')).toBe(true);
    expect(table.has('2001:db8:9::1')).toBe(true);
    expect(table.has('2001:db8:9::2')).toBe(false);
    expect(table.has('fe80::1%eth0')).toBe(false);
    expect(table.lookup('10.1.1.1')?.target).toBe('10.0.0.0/8');
  });

  it('stops enforcing at expiry even before expired bans are collected', () => {
    const clock = createManualClock(1_000);
    const table = new BanTable(clock);
    table.add('192.0.2.1', 'sshd', 2_000);
    table.add('10.0.0.0/8', 'sshd', 3_000);
    table.add('192.0.2.2', 'sshd', null);
    clock.set(1_999);
    expect(table.has('192.0.2.1')).toBe(true);
    clock.set(2_000);
    expect(table.has('192.0.2.1')).toBe(false);
    expect(table.has('10.0.0.1')).toBe(true);
    expect(table.nextExpiry()).toBe(2_000);
    expect(table.takeExpired(2_500).map((e) => e.target)).toEqual(['192.0.2.1']);
    expect(table.takeExpired(5_000).map((e) => e.target)).toEqual(['10.0.0.0/8']);
    expect(table.size).toBe(1);
    expect(table.nextExpiry()).toBe(Number.POSITIVE_INFINITY);
  });

  it('extending a ban moves its expiry; removal frees it', () => {
    const table = new BanTable(createManualClock(0));
    table.add('192.0.2.1', 'sshd', 1_000);
    table.add('192.0.2.1', 'sshd', 5_000);
    expect(table.takeExpired(2_000)).toEqual([]);
    expect(table.size).toBe(1);
    expect(table.remove('192.0.2.1')).toBe(true);
    expect(table.remove('192.0.2.1')).toBe(false);
    expect(table.takeExpired(10_000)).toEqual([]);
    expect(table.has('192.0.2.1')).toBe(false);
  });

  it('a shorter range expiring does not hide a longer overlapping one', () => {
    const clock = createManualClock(0);
    const table = new BanTable(clock);
    table.add('10.0.0.0/8', 'a', 100);
    table.add('10.1.0.0/16', 'b', 1_000);
    clock.set(500);
    expect(table.has('10.1.2.3')).toBe(true);
    expect(table.has('10.2.0.1')).toBe(false);
  });

  it('reuses slots after many bans come and go', () => {
    const table = new BanTable(createManualClock(0));
    for (let i = 0; i < 5000; i++) table.add(`198.51.${i >> 8}.${i & 255}`, 'x', 10 + i);
    expect(table.size).toBe(5000);
    expect(table.takeExpired(100_000, 100_000)).toHaveLength(5000);
    for (let i = 0; i < 5000; i++) table.add(`203.0.${i >> 8}.${i & 255}`, 'x', null);
    expect(table.has('203.0.19.135')).toBe(true);
    expect(table.has('198.51.0.1')).toBe(false);
    expect(table.size).toBe(5000);
  });
});
