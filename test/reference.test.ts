import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OcikitError } from '../src/errors.js';
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
  assert.throws(() => parseReference('oci:dir:@sha256:nothex'), /^OcikitError: malformed digest "sha256:nothex" in oci:dir:@sha256:nothex: expected sha256: and 64 lowercase hex digits$/);
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

test('an unknown transport is named, with the three ocikit knows, instead of a missing file', () => {
  for (const [text, transport] of [['docker://busybox', 'docker'], ['ocii:app', 'ocii'], ['containers-storage:app:v1', 'containers-storage']] as const) {
    assert.throws(() => parseReference(text), (err: unknown) => {
      assert.ok(err instanceof OcikitError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, new RegExp(`^unknown transport "${transport}" in ${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ocikit knows oci, oci-archive, docker-archive`));
      return true;
    });
  }
});

test('a malformed digest says so, with a bare path or a transport', () => {
  assert.throws(() => parseReference('app@sha256:1234'), /^OcikitError: malformed digest "sha256:1234" in app@sha256:1234: expected sha256: and 64 lowercase hex digits$/);
  assert.throws(() => parseReference('oci:dir@sha256:1234'), /malformed digest "sha256:1234"/);
  assert.throws(() => parseReference(`oci-archive:x.tar@sha512:${'a'.repeat(64)}`), /malformed digest "sha512:a+" .*128 lowercase hex digits/);
  assert.throws(() => parseReference(`${layoutFixture('base')}@sha256:XYZ`), /malformed digest "sha256:XYZ"/);
});

test('bare paths still work: an existing path with a colon, a missing path, a path with @ in a directory name', () => {
  const base = layoutFixture('base');
  assert.deepEqual(parseReference('/no/such/dir'), { kind: undefined, path: '/no/such/dir', selector: undefined, text: '/no/such/dir' });
  assert.deepEqual(parseReference('relative/missing:v1'), { kind: undefined, path: 'relative/missing:v1', selector: undefined, text: 'relative/missing:v1' }, 'a slash before the colon: a path, not a transport');
  assert.deepEqual(parseReference('/tmp/user@host/layout').path, '/tmp/user@host/layout');
  assert.deepEqual(parseReference(`${base}:v1`).selector, { tag: 'v1' });
});

test('a reference that is not a string is a usage error, not a TypeError', () => {
  for (const value of [undefined, null, 42, {}]) {
    assert.throws(() => parseReference(value as never), (err: unknown) => err instanceof OcikitError && /expected a string/.test(err.message));
  }
});
