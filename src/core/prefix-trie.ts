import { type Cidr, type ParsedIp, parseCidr, parseIp } from './ip.js';

class TrieNode<V> {
  zero: TrieNode<V> | null = null;
  one: TrieNode<V> | null = null;
  value: V | undefined = undefined;
}

/**
 * A binary trie of networks, one per address family. A lookup walks at most 32 (IPv4) or 128
 * (IPv6) nodes whatever the number of entries, so ten thousand ranges cost what ten do.
 */
export class PrefixTrie<V> {
  #root4 = new TrieNode<V>();
  #root6 = new TrieNode<V>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  set(cidr: Cidr, value: V): void {
    let node = cidr.family === 4 ? this.#root4 : this.#root6;
    for (let i = 0; i < cidr.prefix; i++) {
      const bit = bitAt(cidr, i);
      let next = bit === 0 ? node.zero : node.one;
      if (next === null) {
        next = new TrieNode<V>();
        if (bit === 0) node.zero = next;
        else node.one = next;
      }
      node = next;
    }
    if (node.value === undefined) this.#size++;
    node.value = value;
  }

  get(cidr: Cidr): V | undefined {
    let node: TrieNode<V> | null = cidr.family === 4 ? this.#root4 : this.#root6;
    for (let i = 0; i < cidr.prefix && node !== null; i++) {
      node = bitAt(cidr, i) === 0 ? node.zero : node.one;
    }
    return node?.value;
  }

  delete(cidr: Cidr): boolean {
    const path: TrieNode<V>[] = [];
    let node: TrieNode<V> | null = cidr.family === 4 ? this.#root4 : this.#root6;
    for (let i = 0; i < cidr.prefix && node !== null; i++) {
      path.push(node);
      node = bitAt(cidr, i) === 0 ? node.zero : node.one;
    }
    if (node === null || node.value === undefined) return false;
    node.value = undefined;
    this.#size--;
    // Prune now-empty branches so a churn of bans does not grow the trie forever.
    for (let i = path.length - 1; i >= 0; i--) {
      const child: TrieNode<V> = i === path.length - 1 ? node : (path[i + 1] as TrieNode<V>);
      if (child.value !== undefined || child.zero !== null || child.one !== null) break;
      const parent = path[i] as TrieNode<V>;
      if (bitAt(cidr, i) === 0) parent.zero = null;
      else parent.one = null;
    }
    return true;
  }

  /**
   * The first entry covering the IPv4 address (shortest prefix first) that `accept` approves,
   * or `undefined`.
   */
  findV4(address: number, accept?: (value: V) => boolean): V | undefined {
    let node: TrieNode<V> | null = this.#root4;
    for (let i = 0; node !== null; i++) {
      const value = node.value;
      if (value !== undefined && (accept === undefined || accept(value))) return value;
      if (i === 32) break;
      node = ((address >>> (31 - i)) & 1) === 0 ? node.zero : node.one;
    }
    return undefined;
  }

  findV6(bytes: Uint8Array, accept?: (value: V) => boolean): V | undefined {
    let node: TrieNode<V> | null = this.#root6;
    for (let i = 0; node !== null; i++) {
      const value = node.value;
      if (value !== undefined && (accept === undefined || accept(value))) return value;
      if (i === 128) break;
      node = (((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1) === 0 ? node.zero : node.one;
    }
    return undefined;
  }

  find(ip: ParsedIp, accept?: (value: V) => boolean): V | undefined {
    return ip.family === 4 ? this.findV4(ip.v4, accept) : this.findV6(ip.bytes, accept);
  }

  /** True when there are no IPv4 / IPv6 entries; lets callers skip a walk. */
  isEmpty(family: 4 | 6): boolean {
    const root = family === 4 ? this.#root4 : this.#root6;
    return root.value === undefined && root.zero === null && root.one === null;
  }

  *values(): IterableIterator<V> {
    const stack: TrieNode<V>[] = [this.#root4, this.#root6];
    while (stack.length > 0) {
      const node = stack.pop() as TrieNode<V>;
      if (node.value !== undefined) yield node.value;
      if (node.one !== null) stack.push(node.one);
      if (node.zero !== null) stack.push(node.zero);
    }
  }
}

function bitAt(cidr: Cidr, index: number): number {
  if (cidr.family === 4) return (cidr.v4 >>> (31 - index)) & 1;
  return ((cidr.bytes[index >> 3] as number) >> (7 - (index & 7))) & 1;
}

/** A set of networks (`ignoreip`, `trusted_proxies`) answering "is this address inside?". */
export class CidrSet {
  readonly #trie = new PrefixTrie<Cidr>();

  /** @throws {TypeError} for an entry that is not an IP or CIDR; validate config first. */
  constructor(entries: Iterable<string> = []) {
    for (const entry of entries) this.add(entry);
  }

  get size(): number {
    return this.#trie.size;
  }

  add(entry: string): void {
    const cidr = parseCidr(entry);
    if (cidr === null) throw new TypeError(`not an IP address or CIDR range: ${JSON.stringify(entry)}`);
    this.#trie.set(cidr, cidr);
  }

  has(ip: string | ParsedIp): boolean {
    const parsed = typeof ip === 'string' ? parseIp(ip) : ip;
    if (parsed === null) return false;
    if (this.#trie.isEmpty(parsed.family)) return false;
    return this.#trie.find(parsed) !== undefined;
  }

  entries(): string[] {
    return [...this.#trie.values()].map((cidr) => cidr.text);
  }
}
