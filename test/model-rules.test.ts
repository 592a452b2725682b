/** The domain rules in src/model: image names, value formats, keys and platforms, each from its one home. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OcikitError } from '../src/errors.js';
import { isHttpUrl, isRefName, isRfc3339, isSpdxExpression, isUri, isUrl } from '../src/model/formats.js';
import {
  digestOf, entryName, familiarName, formatImageName, hasTagPart, namesImageOrRepository, parseImageName, plainTag, qualifiedRepositoryOf,
  qualifyImageName, repositoryOf, sameName, stripDigest, tagOf, withLatest, withTagIfNone,
} from '../src/model/image-name.js';
import { CONTAINERD_IMAGE_NAME, isReverseDomainKey, REF_NAME } from '../src/model/keys.js';
import { parsePlatform, parsePlatforms, platformMatches, platformString } from '../src/model/platform.js';

const digest = `sha256:${'c'.repeat(64)}`;

test('image names parse, format and qualify as Docker resolves them', () => {
  assert.deepEqual(parseImageName('registry.example.com:5000/team/app:1.0'), { domain: 'registry.example.com:5000', path: 'team/app', tag: '1.0' });
  assert.deepEqual(parseImageName(`alpine@${digest}`), { domain: undefined, path: 'alpine', digest });
  for (const bad of ['team/UPPER', 'app:', 'app:bad tag', 'app@sha256:12', '']) assert.equal(parseImageName(bad), undefined, bad);
  assert.equal(formatImageName(parseImageName('localhost/app:v1')!), 'localhost/app:v1');
  assert.equal(qualifyImageName('alpine:3'), 'docker.io/library/alpine:3');
  assert.equal(qualifyImageName('example/app'), 'docker.io/example/app');
  assert.equal(qualifyImageName('index.docker.io/library/alpine'), 'docker.io/library/alpine');
  assert.equal(qualifyImageName('not a name'), 'not a name');
});

test('short and full forms of one name are the same name', () => {
  assert.equal(familiarName('docker.io/library/busybox:latest'), 'busybox:latest');
  assert.ok(sameName('docker.io/library/busybox:latest', 'busybox:latest'));
  assert.ok(!sameName('example.com/busybox:latest', 'busybox:latest'));
  assert.ok(namesImageOrRepository('docker.io/library/golang:1.22', 'golang'), 'no tag: any tag of the repository');
  assert.ok(namesImageOrRepository('docker.io/library/golang:1.22', 'golang:1.22'));
  assert.ok(!namesImageOrRepository('docker.io/library/golang:1.22', 'golang:1.21'));
});

test('tags, repositories and digests of a name; a port is no tag', () => {
  assert.equal(tagOf('host:5000/app'), undefined);
  assert.equal(tagOf('host:5000/app:v2'), 'v2');
  assert.equal(tagOf(`app@${digest}`), undefined);
  assert.equal(repositoryOf(`host:5000/app:v2@${digest}`), 'host:5000/app');
  assert.equal(qualifiedRepositoryOf('golang:1.22'), 'docker.io/golang');
  assert.equal(stripDigest(`app@${digest}`), 'app');
  assert.equal(digestOf(`app@${digest}`), digest);
  assert.equal(digestOf('app@sha256:12'), undefined);
  assert.ok(hasTagPart('app:v1') && !hasTagPart('host:5000/app'));
  assert.equal(withLatest('busybox'), 'busybox:latest');
  assert.equal(withLatest('host:5000/busybox'), 'host:5000/busybox:latest');
  assert.equal(withLatest('busybox:1'), 'busybox:1');
  assert.equal(withTagIfNone(parseImageName('example.com/base')!, '2.0'), 'example.com/base:2.0');
  assert.equal(withTagIfNone(parseImageName('example.com/base:1')!, '2.0'), 'example.com/base:1');
  assert.equal(plainTag('1.0'), '1.0');
  assert.equal(plainTag('example.com/app:1.0'), undefined);
});

test('an index.json entry\'s full name: containerd\'s first, a ref name only when it is a full name', () => {
  const d = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1 };
  assert.deepEqual(entryName({ ...d, annotations: { [CONTAINERD_IMAGE_NAME]: 'example.com/app:1', [REF_NAME]: '1' } }), { name: 'example.com/app:1', from: `${CONTAINERD_IMAGE_NAME} annotation` });
  assert.deepEqual(entryName({ ...d, annotations: { [REF_NAME]: 'example.com/app:1' } }), { name: 'example.com/app:1', from: 'ref name' });
  assert.equal(entryName({ ...d, annotations: { [REF_NAME]: '1.0' } }), undefined);
});

test('value formats: RFC 3339 with field ranges, URIs and URLs, ref names, SPDX', () => {
  assert.ok(isRfc3339('2024-02-29T23:59:60.5+05:30'));
  for (const bad of ['2023-02-29T00:00:00Z', '2024-01-01 00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T00:00:00+24:00', 42]) assert.ok(!isRfc3339(bad), String(bad));
  assert.ok(isUri('git+ssh://git@example.com/x') && isUri('urn:isbn:1') && !isUri('no scheme') && !isUri('https://a b'));
  assert.ok(isUrl('https://example.com') && !isUrl('https:') && !isUrl('example.com/x') && isUrl('mailto:a@example.com'));
  assert.ok(isHttpUrl('http://example.com') && !isHttpUrl('ftp://example.com'));
  assert.ok(isRefName('example.com/app:v1.0') && isRefName('a--b') && !isRefName('a//b') && !isRefName('-a') && !isRefName(''));
  assert.ok(isSpdxExpression('(MIT OR Apache-2.0) AND BSD-3-Clause') && !isSpdxExpression('MIT OR') && !isSpdxExpression('(MIT'));
  assert.ok(isReverseDomainKey('com.example.key') && !isReverseDomainKey('key') && !isReverseDomainKey('Com.example'));
});

test('platforms: parsed once from repeated or comma-separated values, matched, printed', () => {
  assert.deepEqual(parsePlatforms(['linux/amd64,linux/arm64/v8', 'linux/s390x']), [
    { os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 's390x' },
  ]);
  assert.throws(() => parsePlatform('linux'), (err: unknown) => err instanceof OcikitError && err.message === 'invalid platform "linux": expected os/arch[/variant]');
  assert.throws(() => parsePlatform('linux/arm64/v8/x'), OcikitError);
  assert.ok(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }), 'no variant asked: any');
  assert.ok(!platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(!platformMatches(undefined, { os: 'linux', architecture: 'amd64' }));
  assert.equal(platformString({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
  assert.equal(platformString(undefined), '');
});
