// SPDX-License-Identifier: MIT
// The peer of bench/verify-blob: sigstore-js (@sigstore/verify, the verifier of the `sigstore`
// npm package and of npm's own provenance checks) verifying a Sigstore bundle over a file
// offline against a trusted root, N times in one process (N=1: one whole command).
//   node sigstore-js-verify.mjs BUNDLE ARTIFACT TRUSTED_ROOT IDENTITY ISSUER [N]
// Run from a directory whose node_modules holds @sigstore/verify, @sigstore/bundle and
// @sigstore/protobuf-specs (bench/verify-blob --install-peers puts them in its cache).
import fs from 'node:fs';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';

const [bundlePath, artifactPath, rootPath, identity, issuer, n = '1'] = process.argv.slice(2);
const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath)));
const verifier = new Verifier(toTrustMaterial(root), { tlogThreshold: 1, ctlogThreshold: 1 });
for (let i = 0; i < parseInt(n, 10); i++) {
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath)));
  verifier.verify(toSignedEntity(bundle, fs.readFileSync(artifactPath)),
                  { subjectAlternativeName: identity, extensions: { issuer } });
}
