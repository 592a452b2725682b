/** Where a descriptor sits, as messages print it: short even for the deepest nesting allowed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chain, type WalkNode } from '../src/graph/walk.js';

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;

function nested(depth: number): WalkNode {
  let node: WalkNode = { descriptor: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: digest(0), size: 1 }, role: 'root', parent: undefined, jsonPath: '$.manifests[0]', depth: 0 };
  for (let i = 1; i <= depth; i++) node = { descriptor: { ...node.descriptor, digest: digest(i) }, role: 'child', parent: node, jsonPath: '$.manifests[0]', depth: i };
  return node;
}

test('a chain keeps its first and last hops and counts the ones between', () => {
  assert.equal(chain(nested(2)).split(' → ').length, 3);
  const deep = chain(nested(33));
  assert.equal(deep.split(' → ').length, 5);
  assert.match(deep, /^index\.json \$\.manifests\[0\] → sha256:0{6}/);
  assert.match(deep, /… 30 more …/);
  assert.ok(deep.length < 200, deep);
});
