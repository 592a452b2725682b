import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseReference } from '../src/store/reference.js';
import { layoutFixture } from './helpers/scratch.js';

const digest = `sha256:${'a'.repeat(64)}`;

test('transport references split path and tag like skopeo', () => {
  assert.deepEqual(parseReference('oci:/x/dir:v1'), { kind: 'oci', path: '/x/dir', selector: { tag: 'v1' }, text: 'oci:/x/dir:v1' });
  assert.deepEqual(parseReference('oci-archive:a.tar').selector, undefined);
  const docker = parseReference('docker-archive:/t/a.tar:example.com/app:1.0');
  assert.equal(docker.path, '/t/a.tar');
  assert.deepEqual(docker.selector, { tag: 'example.com/app:1.0' });
});

test('digest references, with @ or after a colon', () => {
  assert.deepEqual(parseReference(`oci:dir@${digest}`).selector, { digest });
  assert.deepEqual(parseReference(`oci:dir:@${digest}`).selector, { digest });
  assert.throws(() => parseReference('oci:dir:@sha256:nothex'), /invalid digest/);
});

test('a bare path is detected later; a tag after it is split where the path exists', () => {
  const base = layoutFixture('base');
  assert.deepEqual(parseReference(base), { kind: undefined, path: base, selector: undefined, text: base });
  assert.deepEqual(parseReference(`${base}:1.0`).selector, { tag: '1.0' });
  assert.deepEqual(parseReference(`${base}@${digest}`).selector, { digest });
});

test('an empty reference or a transport without path is a usage error', () => {
  assert.throws(() => parseReference(''), /empty image reference/);
  assert.throws(() => parseReference('oci:'), /no path/);
});

test('NAME:TAG without a slash is a tag, not a digest with algorithm NAME', () => {
  assert.deepEqual(parseReference('docker-archive:bb.tar:busybox:latest'), {
    kind: 'docker-archive', path: 'bb.tar', selector: { tag: 'busybox:latest' }, text: 'docker-archive:bb.tar:busybox:latest',
  });
  assert.deepEqual(parseReference('oci-archive:x.tar:myapp:v1').selector, { tag: 'myapp:v1' });
  assert.deepEqual(parseReference('oci:o:myapp:v1').selector, { tag: 'myapp:v1' });
  assert.deepEqual(parseReference('oci:o:sha256:abc').selector, { tag: 'sha256:abc' }, 'too short for a sha256 digest: a name and tag');
  assert.deepEqual(parseReference(`oci:o:${digest}`).selector, { digest });
  const sha512 = `sha512:${'b'.repeat(128)}`;
  assert.deepEqual(parseReference(`oci-archive:x.tar:${sha512}`).selector, { digest: sha512 });
  assert.deepEqual(parseReference('oci:o:@myalg:abc').selector, { digest: 'myalg:abc' }, 'with @ any well-formed algorithm is a digest');
});
