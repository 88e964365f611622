/**
 * @module test/protocol/msgpack-tree
 * A msgpack value as a plain tree, and an encoder that writes it with randomly chosen (all
 * valid) encodings — any integer width that holds the value, str8 for a short string, map16 for
 * a small map — so tests reach the byte forms a generic encoder never writes. Also the mutations
 * the fast-vs-generic decoder tests apply to valid request trees.
 */

export type Tree =
  | { kind: "int"; value: number }
  | { kind: "float"; value: number }
  | { kind: "str"; bytes: Uint8Array }
  | { kind: "bin"; bytes: Uint8Array }
  | { kind: "nil" }
  | { kind: "bool"; value: boolean }
  | { kind: "map"; entries: Array<[Tree, Tree]> }
  | { kind: "array"; items: Tree[] };

const utf8 = new TextEncoder();

export const int = (value: number): Tree => ({ kind: "int", value });
export const str = (text: string): Tree => ({ kind: "str", bytes: utf8.encode(text) });
export const bin = (bytes: Uint8Array): Tree => ({ kind: "bin", bytes });
export const array = (items: Tree[]): Tree => ({ kind: "array", items });
export const map = (entries: Record<string, Tree>): Tree => ({ kind: "map", entries: Object.entries(entries).map(([key, value]) => [str(key), value]) });

function pick<T>(random: () => number, choices: readonly T[]): T {
  return choices[Math.floor(random() * choices.length)] as T;
}

function pushUint(out: number[], value: bigint, bytes: number): void {
  for (let shift = BigInt((bytes - 1) * 8); shift >= 0n; shift -= 8n) out.push(Number((value >> shift) & 0xffn));
}

function writeInt(value: number, out: number[], random: () => number): void {
  const forms: Array<[number, number]> = []; // [head, width]; width 0: the value is in the head
  if (value >= 0 && value < 0x80) forms.push([-1, 0]);
  if (value < 0 && value >= -0x20) forms.push([-2, 0]);
  if (value >= 0) {
    if (value < 2 ** 8) forms.push([0xcc, 1]);
    if (value < 2 ** 16) forms.push([0xcd, 2]);
    if (value < 2 ** 32) forms.push([0xce, 4]);
    forms.push([0xcf, 8]);
  }
  if (value >= -(2 ** 7) && value < 2 ** 7) forms.push([0xd0, 1]);
  if (value >= -(2 ** 15) && value < 2 ** 15) forms.push([0xd1, 2]);
  if (value >= -(2 ** 31) && value < 2 ** 31) forms.push([0xd2, 4]);
  forms.push([0xd3, 8]);
  const [head, width] = pick(random, forms);
  if (head === -1) return void out.push(value);
  if (head === -2) return void out.push(0x100 + value);
  out.push(head);
  pushUint(out, BigInt.asUintN(width * 8, BigInt(value)), width);
}

function writeLengthHead(out: number[], length: number, random: () => number, fix: number | null, fixMax: number, heads: readonly [number, number, number]): void {
  const forms: Array<[number, number]> = [];
  if (fix !== null && length <= fixMax) forms.push([fix | length, 0]);
  if (heads[0] >= 0 && length < 2 ** 8) forms.push([heads[0], 1]);
  if (length < 2 ** 16) forms.push([heads[1], 2]);
  forms.push([heads[2], 4]);
  const [head, width] = pick(random, forms);
  out.push(head);
  pushUint(out, BigInt(length), width);
}

function writeTree(tree: Tree, out: number[], random: () => number): void {
  switch (tree.kind) {
    case "int":
      return writeInt(tree.value, out, random);
    case "float": {
      const view = new DataView(new ArrayBuffer(8));
      if (Math.fround(tree.value) === tree.value && random() < 0.5) {
        view.setFloat32(0, tree.value);
        return void out.push(0xca, ...new Uint8Array(view.buffer, 0, 4));
      }
      view.setFloat64(0, tree.value);
      return void out.push(0xcb, ...new Uint8Array(view.buffer));
    }
    case "str":
      writeLengthHead(out, tree.bytes.length, random, 0xa0, 31, [0xd9, 0xda, 0xdb]);
      return void out.push(...tree.bytes);
    case "bin":
      writeLengthHead(out, tree.bytes.length, random, null, 0, [0xc4, 0xc5, 0xc6]);
      return void out.push(...tree.bytes);
    case "nil":
      return void out.push(0xc0);
    case "bool":
      return void out.push(tree.value ? 0xc3 : 0xc2);
    case "map":
      writeLengthHead(out, tree.entries.length, random, 0x80, 15, [-1, 0xde, 0xdf]);
      for (const [key, value] of tree.entries) {
        writeTree(key, out, random);
        writeTree(value, out, random);
      }
      return;
    case "array":
      writeLengthHead(out, tree.items.length, random, 0x90, 15, [-1, 0xdc, 0xdd]);
      for (const item of tree.items) writeTree(item, out, random);
  }
}

/** The tree's msgpack bytes; `random` picks each value's encoding (always the shortest when null). */
export function encodeTree(tree: Tree, random: (() => number) | null): Uint8Array {
  const out: number[] = [];
  writeTree(tree, out, random ?? (() => 0));
  return new Uint8Array(out);
}

/** Every node of a tree with a setter replacing it in its parent (the root has none). */
function nodes(tree: Tree): Array<{ node: Tree; replace: ((next: Tree) => void) | null; parentMap: Array<[Tree, Tree]> | null }> {
  const found: Array<{ node: Tree; replace: ((next: Tree) => void) | null; parentMap: Array<[Tree, Tree]> | null }> = [{ node: tree, replace: null, parentMap: null }];
  for (let index = 0; index < found.length; index++) {
    const node = (found[index] as { node: Tree }).node;
    if (node.kind === "map") {
      node.entries.forEach((entry) => {
        found.push({ node: entry[0], replace: (next) => (entry[0] = next), parentMap: null });
        found.push({ node: entry[1], replace: (next) => (entry[1] = next), parentMap: node.entries });
      });
    } else if (node.kind === "array") {
      node.items.forEach((item, itemIndex) => found.push({ node: item, replace: (next) => (node.items[itemIndex] = next), parentMap: null }));
    }
  }
  return found;
}

/** Values of every kind and edge, to swap in for a valid one. */
function oddValue(random: () => number): Tree {
  return pick<() => Tree>(random, [
    () => ({ kind: "nil" }),
    () => ({ kind: "bool", value: random() < 0.5 }),
    () => ({ kind: "float", value: pick(random, [0, 1, 5, 1.5, -1, Number.NaN, 2 ** 53]) }),
    () => int(pick(random, [-1, -33, -200, 0, 1, 9_999, 10_000, 300_000, 300_001, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -(2 ** 40)])),
    () => str(pick(random, ["", "t", "produce", "fetch", "written", "none", "synced", "é", "x".repeat(255), "x".repeat(256), "__proto__"])),
    () => bin(new Uint8Array(Math.floor(random() * 4))),
    () => array([]),
    () => array([int(1)]),
    () => map({}),
    () => map({ topic: str("t") }),
  ])();
}

const KEYS = ["id", "op", "durability", "batches", "partitions", "maxBytes", "maxWaitMs", "minBytes", "topic", "partition", "batch", "offset", "other", "__proto__"];

/** Applies one random structural change to a (deep-copied) request tree. */
export function mutateTree(tree: Tree, random: () => number): Tree {
  const copy = structuredClone(tree);
  const all = nodes(copy);
  const target = pick(random, all);
  const action = random();
  if (action < 0.45 && target.replace !== null) target.replace(oddValue(random));
  else if (action < 0.6 && target.node.kind === "map" && target.node.entries.length > 0) {
    target.node.entries.splice(Math.floor(random() * target.node.entries.length), 1);
  } else if (action < 0.75 && target.node.kind === "map") {
    const entry: [Tree, Tree] = random() < 0.3 && target.node.entries.length > 0
      ? (structuredClone(pick(random, target.node.entries)) as [Tree, Tree])
      : [random() < 0.2 ? int(Math.floor(random() * 3)) : str(pick(random, KEYS)), oddValue(random)];
    target.node.entries.splice(Math.floor(random() * (target.node.entries.length + 1)), 0, entry);
  } else if (action < 0.85 && target.node.kind === "array") {
    if (random() < 0.5) target.node.items.length = 0;
    else target.node.items.push(random() < 0.5 && target.node.items.length > 0 ? structuredClone(pick(random, target.node.items)) : oddValue(random));
  } else if (target.node.kind === "str" && target.node.bytes.length > 0) {
    const bytes = target.node.bytes.slice();
    bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    target.node.bytes = bytes;
  } else if (target.replace !== null) target.replace(oddValue(random));
  return copy;
}
