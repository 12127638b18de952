#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Offline bundles end to end: `bundle create` on a connected machine, `verify` and `apply`
on a machine with an empty nix store, no repository section, no substituter and no registry
(the same world, wiped: a fresh machine at the same paths, since nix store paths name their
store directory). Real git packs, real nix binary caches and imports, real generations, the
nixos-rebuild stand-in and the health service on loopback.

The attacks on the format itself (one hostile bundle each) are in test_bundle_hostile.py;
here: the round trip and what the engine decides (sequence, fast-forward, commit signature,
health and rollback, staging, state)."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from registry import (Registry, attest_sbom, make_cosign_keypair, push_image, push_index,  # noqa: E402
                      sign_bundle, sign_classic)


def openssl_keypair(directory: Path, name: str, algorithm: str = "ec") -> tuple[Path, Path]:
    key, pub = directory / f"{name}.pem", directory / f"{name}.pub"
    if algorithm == "ec":
        args = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    elif algorithm == "ed25519":
        args = ["-algorithm", "ed25519"]
    else:
        args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run(["openssl", "genpkey", *args, "-out", str(key)], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True)
    return key, pub


def tree(path: Path) -> dict:
    """Every file and directory below path with its size and mtime."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(path))] = (st.st_mode, st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


class BundleBase(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()
        self.key, self.pub = openssl_keypair(self.w.tmp, "bundle")
        self.out = self.w.tmp / "out"
        self.out.mkdir()
        self.configure()

    # -- helpers ---------------------------------------------------------------------------

    def configure(self, **overrides):
        """A bundle-only machine: no repository section."""
        overrides.setdefault("bundle", {"keys": [str(self.pub)]})
        cfg = self.w.config_dict(**overrides)
        cfg.pop("repository", None)
        from world import to_yaml
        p = self.w.tmp / "config.yaml"
        p.write_text(to_yaml(cfg))
        self.w.config_path = p

    def create(self, rev, name="b.tar", *args, expect=0, key=None):
        out = self.out / name
        r = self.w.agent("bundle", "create", "-o", str(out), "--rev", rev, "--repo", str(self.w.repo.work),
                         "--key", str(key or self.key), *args)
        self.assertEqual(r.returncode, expect, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return out

    def agent(self, *args, expect):
        r = self.w.agent(*args)
        self.assertEqual(r.returncode, expect, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def status(self):
        return json.loads(self.agent("status", "--json", expect=0).stdout)

    def state_bytes(self):
        p = self.w.state_dir / "state.json"
        return p.read_bytes() if p.exists() else None

    def wipe_machine(self):
        self.w.wipe_machine()

    def manifest(self, bundle):
        with tarfile.open(bundle) as t:
            return json.loads(t.extractfile("manifest.json").read())

    def assert_refused(self, bundle, reason, *args, verify=True):
        """apply (and verify, unless the refusal is about the commit, which verify does not
        look at) refuses with exit 3 and the reason, and changes nothing."""
        before_state, before_tree = self.state_bytes(), tree(self.w.state_dir)
        r = self.agent("verify", str(bundle), *args, expect=3 if verify else 0)
        if verify:
            self.assertIn(reason, r.stderr)
        self.assertEqual(tree(self.w.state_dir), before_tree, "verify wrote something")
        r = self.agent("apply", str(bundle), *args, expect=3)
        self.assertIn(reason, r.stderr)
        self.assertEqual(self.state_bytes(), before_state, "a refused apply changed the state file")
        after = tree(self.w.state_dir)
        after.pop("last-run.json", None)
        before_tree.pop("last-run.json", None)
        # The mirror may have gained objects of the refused revision (as a fetch would); the
        # staging directory must be gone.
        self.assertEqual([p for p in after if p.startswith("staging/bundle-")], [])
        return r

class BundleTest(BundleBase):
    # -- the round trip --------------------------------------------------------------------

    def test_create_never_follows_a_planted_temporary_file(self):
        """bundle create writes its output through a new file of a random name beside OUT
        (O_EXCL), never through OUT.tmp: a symlink planted there overwrites nothing (issue 17,
        item 7)."""
        victim = self.w.tmp / "victim"
        victim.write_text("precious\n")
        out = self.out / "b.tar"
        (self.out / "b.tar.tmp").symlink_to(victim)
        self.create(self.w.commit(), "b.tar")
        self.assertEqual(victim.read_text(), "precious\n")
        self.assertTrue(out.is_file() and not out.is_symlink())
        self.assertEqual(out.stat().st_mode & 0o777, 0o644)
        self.assertEqual(sorted(p.name for p in self.out.iterdir()), ["b.tar", "b.tar.tmp"],
                         "a temporary file was left behind")


    def test_round_trip_onto_a_fresh_machine(self):
        w = self.w
        rev = w.commit()
        w.reset_call_logs()
        bundle = self.create(rev, "b.tar", "--sequence", "7")
        self.assertEqual(w.evaluations(), 1, w.evaluation_calls())
        m = self.manifest(bundle)
        self.assertEqual((m["format"], m["version"], m["host"], m["revision"], m["sequence"]),
                         ("atticd-agent-bundle", 2, "testhost", rev, 7))
        toplevel = m["system"]
        self.assertEqual(m["closure"]["paths"], [toplevel], "no flake sources without --with-sources")
        self.assertEqual(m["containers"], {})
        self.assertEqual(m["images"], [])  # carried, but the test flake has no containers
        self.assertEqual(m["closure"]["store-dir"], str(w.store_dir))

        self.wipe_machine()
        self.assertFalse(Path(toplevel).exists())
        r = self.agent("verify", str(bundle), expect=0)
        self.assertIn(rev, r.stdout)
        self.assertEqual(list(w.state_dir.iterdir()), [], "verify wrote into the state directory")

        w.reset_call_logs()
        r = self.agent("apply", str(bundle), expect=0)
        self.assertIn("Importing the closure", r.stderr)
        # Nothing evaluated, nothing built: the signed system, imported, is what is activated.
        self.assertEqual(w.evaluations(), 0, w.evaluation_calls())
        self.assertEqual(w.system_builds(), [])
        # Health first: activated (test), then, healthy, the boot default (boot).
        self.assertEqual(w.activations(), [f"test {toplevel} 0", f"boot {toplevel} 0"])
        self.assertEqual(w.current_system(), toplevel)
        self.assertEqual(w.boot_default(), toplevel)
        self.assertEqual(w.profile_target(), toplevel)
        self.assertEqual(w.health(), 200)
        # Imported from the bundle, not built here: nix marks what it built itself "ultimate".
        info = json.loads(subprocess.run(["nix", "path-info", "--json", toplevel], env=w.env, check=True,
                                         capture_output=True, text=True).stdout)
        self.assertNotIn("ultimate", info[0])
        self.assertEqual(list((w.state_dir / "staging").iterdir()), [])

        s = self.status()
        self.assertEqual(s["revision"], rev)
        d = s["history"][-1]
        self.assertEqual((d["source"], d["result"], d["revision"], d["generation"]),
                         ("bundle", "success", rev, toplevel))
        self.assertEqual(d["bundle"]["sequence"], 7)
        self.assertEqual(len(d["bundle"]["id"]), 64)
        self.assertTrue(d["bundle"]["signer"].startswith("SHA256:"))
        state = json.loads(self.state_bytes())
        self.assertEqual(state["bundle-sequence"], 7)

    def test_libraries_are_loaded_when_needed(self):
        """libcurl and libarchive (and the libraries each brings) are loaded when first needed:
        `status` loads neither; verify loads libarchive, makes no HTTP request and never loads
        libcurl; apply loads libarchive, and libcurl for the HTTP health check, after the bundle
        has been verified and extracted. The dynamic loader says what it loads (LD_DEBUG=files),
        and which object asked for it."""
        w = self.w
        rev = w.commit()
        bundle = self.create(rev, "b.tar")
        self.wipe_machine()
        self.configure(health={"settle": 0, "timeout": 5, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        agent = str(w.agent_bin())

        def loads(stderr, soname):
            # Under AddressSanitizer dlopen() is intercepted, and the loader names libasan as the
            # object that asked.
            pattern = (r"file=%s \[0\];  dynamically loaded by (%s|\S*/libasan\.so[.\d]*) "
                       % (re.escape(soname), re.escape(agent)))
            return list(re.finditer(pattern, stderr))

        r = w.agent("status", env={"LD_DEBUG": "files"})
        self.assertEqual(r.returncode, 0, r.stderr[-4000:])
        self.assertIn(f"file=libgit2.so.1.5 [0];  needed by {agent} ", r.stderr)  # the loader did speak
        self.assertNotIn("libcurl", r.stderr)
        self.assertNotIn("libarchive", r.stderr)

        r = w.agent("verify", str(bundle), env={"LD_DEBUG": "files"})
        self.assertEqual(r.returncode, 0, r.stderr[-4000:])
        self.assertEqual(len(loads(r.stderr, "libarchive.so.13")), 1, "libarchive loaded once")
        self.assertNotIn("libcurl", r.stderr)

        r = w.agent("apply", str(bundle), env={"LD_DEBUG": "files"})
        self.assertEqual(r.returncode, 0, r.stderr[-4000:])
        self.assertEqual(w.health(), 200)
        self.assertEqual(len(loads(r.stderr, "libarchive.so.13")), 1, "libarchive loaded once")
        curl = loads(r.stderr, "libcurl.so.4")
        self.assertEqual(len(curl), 1, "libcurl loaded %d times" % len(curl))
        self.assertLess(r.stderr.index("Importing the closure"), curl[0].start())
        self.assertIn("Healthy: all 1 check(s) passed", r.stderr)

    @unittest.skipUnless(shutil.which("skopeo"), "skopeo is not installed (tools/install-deps installs it)")
    def test_round_trip_with_images(self):
        """The images of the revision travel in the bundle as OCI layouts with their Cosign
        signatures and SBOM attestation; on the fresh machine, with the registry stopped, they
        are verified from the layouts with the registry path's verifier and imported by a real
        skopeo (into dir: directories here, containers-storage: by default)."""
        w = self.w
        reg = Registry(w.tmp)
        self.addCleanup(reg.stop)
        ckey, cpub = make_cosign_keypair(w.tmp, "ecdsa-p256", name="release")
        web = push_image(reg, "app/web", "1.0", layers=2)
        a, b = push_image(reg, "app/multi", "amd64"), push_image(reg, "app/multi", "arm64", arch="arm64")
        multi = push_index(reg, "app/multi", "1.0", [a, b])
        sign_classic(reg, "app/web", web, ckey)
        attest_sbom(reg, "app/web", web, ckey)
        sign_bundle(reg, "app/multi", multi, ckey)
        rev = w.commit(images={"web": f"{reg.host}/app/web:1.0", "multi": f"{reg.host}/app/multi@{multi}"})
        imported = w.tmp / "imported"
        policy = w.tmp / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        attest_sbom(reg, "app/multi", multi, ckey)
        self.configure(images={"keys": [str(cpub)], "insecure-registries": [reg.host], "require-sbom": True},
                       bundle={"keys": [str(self.pub)],
                               "image-import-command": ["skopeo", "--policy", str(policy), "copy", "--all",
                                                        "oci:{layout}:image", f"dir:{imported}/{{name}}"]})
        bundle = self.create(rev, "b.tar")
        m = self.manifest(bundle)
        self.assertEqual({i["reference"]: i["digest"] for i in m["images"]},
                         {f"{reg.host}/app/web:1.0": web, f"{reg.host}/app/multi@{multi}": multi})
        self.assertEqual(m["containers"], {"web": f"{reg.host}/app/web:1.0", "multi": f"{reg.host}/app/multi@{multi}"})

        # The same members, validly signed, but the manifest names another digest for web than
        # its layout holds: apply must refuse (each image must be the one the manifest names).
        import bundlewriter as bw
        forged = bw.Bundle("testhost", rev, key=bw.Key(self.key, self.pub, "ec"), sequence=m["sequence"],
                           system=m["system"], containers=m["containers"], closure=m["closure"],
                           images=[dict(i, digest=multi if i["digest"] == web else i["digest"]) for i in m["images"]])
        for name, data in bw.read_members(bundle.read_bytes())[2:]:
            forged.add(name, data)
        forged = forged.write(self.out / "forged.tar")

        reg.stop()
        self.wipe_machine()
        imported.mkdir()
        r = self.assert_refused(forged, "not to " + multi, verify=False)
        self.assertEqual(list(imported.iterdir()), [], "an image was imported")
        w.reset_call_logs()
        r = self.agent("apply", str(bundle), expect=0)
        self.assertEqual(w.evaluations(), 0, w.evaluation_calls())
        self.assertEqual(w.health(), 200)
        for name, digest in (("web", web), ("multi", multi)):
            got = (imported / name / "manifest.json").read_bytes()
            self.assertEqual("sha256:" + hashlib.sha256(got).hexdigest(), digest, name)
        d = self.status()["history"][-1]
        self.assertEqual((d["source"], d["result"], d["revision"]), ("bundle", "success", rev))
        recorded = {i["name"]: i for i in d["images"]}
        self.assertEqual(recorded["web"]["digest"], web)
        self.assertEqual(recorded["multi"]["digest"], multi)
        for i in recorded.values():
            self.assertEqual(len(i["signers"]), 1, i)
            self.assertTrue(i["signers"][0].startswith("SHA256:"))
            self.assertTrue(i["sbom"], i)

    @unittest.skipUnless(shutil.which("skopeo"), "skopeo is not installed (tools/install-deps installs it)")
    def test_image_signed_by_an_unknown_key_is_refused(self):
        """An image in the bundle whose signature no configured Cosign key made: refused (3)
        after the bundle itself verified, with nothing imported and the state unchanged."""
        w = self.w
        reg = Registry(w.tmp)
        self.addCleanup(reg.stop)
        ckey, cpub = make_cosign_keypair(w.tmp, "ecdsa-p256", name="release")
        _, other_pub = make_cosign_keypair(w.tmp, "ecdsa-p256", name="other")
        web = push_image(reg, "app/web", "1.0")
        sign_classic(reg, "app/web", web, ckey)
        rev = w.commit(images={"web": f"{reg.host}/app/web:1.0"})
        imported = w.tmp / "imported"
        # bundle create checks the images as the machine will: with the other key, it refuses
        # to sign them.
        self.configure(images={"keys": [str(other_pub)], "insecure-registries": [reg.host]})
        r = w.agent("bundle", "create", "-o", str(self.out / "x.tar"), "--rev", rev, "--repo", str(w.repo.work),
                    "--key", str(self.key), "--no-closure")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("the images do not verify", r.stderr)
        self.assertFalse((self.out / "x.tar").exists())
        self.configure(images={"keys": [str(cpub)], "insecure-registries": [reg.host]},
                       bundle={"keys": [str(self.pub)],
                               "image-import-command": ["skopeo", "--insecure-policy", "copy", "oci:{layout}:image",
                                                        f"dir:{imported}/{{name}}"]})
        bundle = self.create(rev, "b.tar")
        reg.stop()
        self.wipe_machine()
        self.configure(images={"keys": [str(other_pub)], "insecure-registries": [reg.host]},
                       bundle={"keys": [str(self.pub)],
                               "image-import-command": ["skopeo", "--insecure-policy", "copy", "oci:{layout}:image",
                                                        f"dir:{imported}/{{name}}"]})
        imported.mkdir()
        r = self.assert_refused(bundle, "web", verify=False)
        self.assertIn("no valid signature by a trusted key", r.stderr)
        self.assertEqual(list(imported.iterdir()), [], "an image was imported before its signature verified")

    def test_replay_and_downgrade_are_refused(self):
        w = self.w
        r1 = w.commit()
        b5 = self.create(r1, "b5.tar", "--sequence", "5", "--no-closure")
        r2 = w.commit()
        b4 = self.create(r2, "b4.tar", "--sequence", "4", "--no-closure")
        self.agent("apply", str(b5), expect=0)
        # The same bundle again: a replay.
        self.assert_refused(b5, "sequence 5 is not above 5")
        # A newer revision in an older bundle: a downgrade of the bundle sequence.
        self.assert_refused(b4, "sequence 4 is not above 5")
        self.agent("verify", str(b4), "--allow-downgrade", expect=0)
        self.agent("apply", str(b4), "--allow-downgrade", expect=0)
        self.assertEqual(self.status()["revision"], r2)
        # The sequence never goes down.
        self.assertEqual(json.loads(self.state_bytes())["bundle-sequence"], 5)

    def test_without_closure(self):
        """A bundle without the closure: apply activates its system only when the store holds
        it; otherwise it refuses, changing nothing, unless --reevaluate, which evaluates the
        bundled flake here (it must give the signed system) and builds it, offline."""
        w = self.w
        rev = w.commit()
        bundle = self.create(rev, "b.tar", "--no-closure", "--no-images")
        m = self.manifest(bundle)
        self.assertIsNone(m["closure"])
        self.assertEqual([x["path"] for x in m["members"]], ["repository.pack"])
        self.wipe_machine()
        r = self.assert_refused(bundle, "carries no closure of its system", verify=False)
        self.assertIn("--reevaluate", r.stderr)
        self.assertIsNone(w.current_system())
        w.reset_call_logs()
        self.agent("apply", str(bundle), "--reevaluate", expect=0)
        self.assertEqual(w.evaluations(), 1)
        self.assertEqual(w.health(), 200)
        self.assertEqual(w.current_system(), m["system"])
        self.assertEqual(self.status()["revision"], rev)

    def test_reevaluate(self):
        """apply --reevaluate: the signed system must be what the bundled flake evaluates to
        here. A bundle whose signer named another system (here: the system of another revision,
        validly signed by the same trusted key) is refused with it, and applied without it (the
        signer is trusted for what it signs)."""
        import bundlewriter as bw
        w = self.w
        r1 = w.commit()
        r2 = w.commit()
        good = self.create(r2, "good.tar", "--with-sources")
        m = self.manifest(good)
        self.assertEqual(len(m["closure"]["paths"]), 2, "the toplevel and the flake's source")
        plain = self.create(r2, "plain.tar", "--sequence", "1")
        sizes = (good.stat().st_size, plain.stat().st_size)
        print(f"\nbundle sizes: {sizes[0]} bytes with --with-sources, {sizes[1]} without", file=sys.stderr)
        self.assertLess(sizes[1], sizes[0])

        # Another revision's system, in a bundle of r2 signed by the trusted key.
        other = bw.build_system(w.run, w.deploy_ref(r1), "testhost")
        key = bw.Key(self.key, self.pub, "ec")
        b = bw.Bundle("testhost", r2, key=key, sequence=50, system=other).add_pack(w.repo.work)
        forged = b.write(self.out / "other-system.tar")
        before = self.state_bytes()
        r = self.agent("apply", str(forged), "--reevaluate", expect=3)
        self.assertIn("not to the signed", r.stderr)
        self.assertEqual(self.state_bytes(), before)
        self.assertIsNone(w.current_system())

        w.reset_call_logs()
        self.agent("apply", str(good), "--reevaluate", expect=0)
        self.assertEqual(w.evaluations(), 1)
        self.assertEqual(w.current_system(), m["system"])
        self.assertEqual(self.status()["revision"], r2)

    def test_same_revision_records_the_sequence(self):
        rev = self.w.commit()
        self.agent("apply", str(self.create(rev, "a.tar", "--sequence", "3", "--no-closure")), expect=0)
        r = self.agent("apply", str(self.create(rev, "b.tar", "--sequence", "4", "--no-closure")), expect=0)
        self.assertIn("deployed already", r.stderr)
        self.assertEqual(json.loads(self.state_bytes())["bundle-sequence"], 4)
        self.assertEqual(len(self.status()["history"]), 1)

    def test_compressed_bundles(self):
        """A bundle compressed with zstd, xz or gzip (by its name's suffix) verifies and
        applies, and what it carries is what is deployed: one revision each, applied in turn,
        is the deployed revision, its system (built from that revision's world.json: its
        marker) runs and answers, and the history records it with its sequence."""
        w = self.w
        magic = {".zst": b"\x28\xb5\x2f\xfd", ".xz": b"\xfd7zXZ\x00", ".gz": b"\x1f\x8b"}
        systems = []
        for sequence, (suffix, m) in enumerate(magic.items(), 1):
            with self.subTest(suffix=suffix):
                rev = w.commit()
                marker = json.loads(w.repo.git("show", f"{rev}:world.json").stdout)["marker"]
                b = self.create(rev, "b.tar" + suffix, "--no-closure", "--sequence", str(sequence))
                self.assertEqual(b.read_bytes()[:len(m)], m, suffix)
                r = self.agent("verify", str(b), expect=0)
                self.assertIn(rev, r.stdout)
                self.agent("apply", str(b), expect=0)
                s = self.status()
                self.assertEqual((s["revision"], s["bundle-sequence"]), (rev, sequence))
                d = s["history"][-1]
                self.assertEqual((d["source"], d["result"], d["revision"], d["bundle"]["sequence"]),
                                 ("bundle", "success", rev, sequence))
                self.assertEqual(d["generation"], s["generation"])
                self.assertEqual(w.current_system(), s["generation"])
                self.assertEqual(w.profile_target(), s["generation"])
                self.assertEqual(w.marker_of(s["generation"]), marker)
                self.assertEqual(w.service_marker(), marker)
                systems.append(s["generation"])
        self.assertEqual(len(set(systems)), len(magic), systems)

    def test_ed25519_key(self):
        key, pub = openssl_keypair(self.w.tmp, "ed", "ed25519")
        self.configure(bundle={"keys": [str(self.pub), str(pub)]})
        rev = self.w.commit()
        b = self.create(rev, "b.tar", "--no-closure", key=key)
        r = self.agent("verify", str(b), expect=0)
        self.assertIn(str(pub), r.stdout)

    def test_staging_left_by_a_killed_apply_is_removed_by_the_next(self):
        """apply extracts into <state-dir>/staging/bundle-XXXXXX; a run killed there cannot
        remove it, and the next apply removes it before it extracts (docs/architecture.md;
        issue 24, item 8)."""
        w = self.w
        rev = w.commit(payload_mib=8)
        bundle = self.create(rev, "b.tar", "--sequence", "1")
        self.wipe_machine()
        staging = w.state_dir / "staging"

        def extracting():
            """The staging directory of the run, once something was extracted into it."""
            try:
                return next((d for d in staging.glob("bundle-*") if any(d.iterdir())), None)
            except OSError:  # not there yet, or removed while listed
                return None

        p = w.popen([w.agent_bin(), "-c", str(w.config_path), "apply", str(bundle)])
        try:
            # Stopped as soon as it is seen (the agent goes on within milliseconds), then killed.
            leftover = w.wait_for(lambda: extracting() or p.poll() is not None, timeout=120, interval=0.005)
            if p.poll() is not None:
                self.fail(f"apply ended (exit {p.returncode}) before its staging directory was seen:\n"
                          f"{p.communicate()[1]}")
            os.killpg(p.pid, signal.SIGSTOP)
            self.assertTrue(isinstance(leftover, Path) and leftover.is_dir(),
                            f"no staging directory with content was seen: {leftover!r}")
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=60)
        self.assertEqual(p.returncode, -signal.SIGKILL)
        self.assertTrue(leftover.is_dir(), "the killed run removed its staging directory")
        self.assertTrue(any(leftover.iterdir()), "the killed run emptied its staging directory")

        self.agent("apply", str(bundle), expect=0)
        self.assertFalse(leftover.exists(), "the next apply left the killed run's staging directory")
        self.assertEqual(list(staging.iterdir()), [])
        self.assertEqual(self.status()["revision"], rev)
        self.assertEqual(w.current_system(), self.manifest(bundle)["system"])

    # -- refusals the engine makes ---------------------------------------------------------

    def test_expired(self):
        rev = self.w.commit()
        b = self.create(rev, "b.tar", "--no-closure", "--expires", "1")
        time.sleep(2.1)
        self.assert_refused(b, "expired")

    def test_another_host(self):
        rev = self.w.commit(host="otherhost")
        b = self.create(rev, "b.tar", "--no-closure", "--host", "otherhost")
        self.assert_refused(b, "for host 'otherhost'")

    def test_host_option_names_what_is_built(self):
        """bundle create --host NAME evaluates and builds nixosConfigurations.NAME, whatever
        the configuration's host, and with no configuration file at all."""
        w = self.w
        rev = w.commit()
        self.configure(host="web2")  # the configuration of another machine
        b = self.create(rev, "b.tar", "--no-closure", "--host", "testhost")
        m = self.manifest(b)
        self.assertEqual(m["host"], "testhost")
        self.assertIn("nixos-system-testhost-world", m["system"])
        out = self.out / "c.tar"
        r = w.agent("bundle", "create", "-o", str(out), "--rev", rev, "--repo", str(w.repo.work), "--key",
                    str(self.key), "--no-closure", "--host", "testhost", config=False,
                    env={"ATTICD_AGENT_CONFIG": str(w.tmp / "no-such-config.yaml")})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("(null)", r.stderr)
        self.assertEqual(self.manifest(out)["system"], m["system"])

    def test_wrong_key(self):
        other_key, _ = openssl_keypair(self.w.tmp, "other")
        rev = self.w.commit()
        b = self.create(rev, "b.tar", "--no-closure", key=other_key)
        self.assert_refused(b, "does not verify with any key of bundle.keys")

    def test_tampered_nar_imports_nothing(self):
        w = self.w
        rev = w.commit()
        b = self.create(rev, "b.tar")
        toplevel = self.manifest(b)["closure"]["paths"][0]
        data = bytearray(b.read_bytes())
        # One byte of the NAR of the toplevel (uncompressed in the tar): its builder script.
        i = data.find(b"switch-to-configuration", data.find(b"nix/nar/"))
        self.assertGreater(i, 0)
        data[i] ^= 0x20
        bad = self.out / "bad.tar"
        bad.write_bytes(bytes(data))
        self.wipe_machine()
        self.assert_refused(bad, "does not match its sha256")
        self.assertFalse(Path(toplevel).exists(), "something was imported from a refused bundle")
        self.assertIsNone(w.current_system())

    def test_not_a_fast_forward(self):
        w = self.w
        base = w.commit()
        ahead = w.commit()
        self.agent("apply", str(self.create(ahead, "ahead.tar", "--no-closure", "--sequence", "1")), expect=0)
        # A sibling of `ahead`: not a descendant of what is deployed.
        w.repo.git("checkout", "-q", "-b", "side", base)
        side = w.commit(branch="side")
        self.assert_refused(self.create(side, "side.tar", "--no-closure", "--sequence", "2"),
                            "does not descend from the deployed", verify=False)
        # And an older revision: a downgrade of the code, even in a newer bundle.
        self.assert_refused(self.create(base, "old.tar", "--no-closure", "--sequence", "3"), "a downgrade",
                            verify=False)
        self.assertEqual(self.status()["revision"], ahead)

    def test_commit_signature_required(self):
        w = self.w
        key = w.tmp / "signer"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dev", "-f", str(key)], check=True)
        signers = w.tmp / "allowed_signers"
        signers.write_text("dev@example.org namespaces=\"git\" " + Path(str(key) + ".pub").read_text())
        self.configure(repository=None)
        cfg = w.config_dict(bundle={"keys": [str(self.pub)]})
        # allowed-signers lives in the repository section; a bundle machine may have one
        # without a url to pull from.
        cfg["repository"] = {"allowed-signers": str(signers)}
        from world import to_yaml
        w.config_path.write_text(to_yaml(cfg))
        r = self.agent("pull", expect=2)
        self.assertIn("nothing to pull from", r.stderr)

        unsigned = w.commit()
        self.assert_refused(self.create(unsigned, "u.tar", "--no-closure", "--sequence", "1"), "is not signed",
                            verify=False)
        signed = w.commit(sign_key=key)
        self.agent("apply", str(self.create(signed, "s.tar", "--no-closure", "--sequence", "2")), expect=0)
        self.assertTrue(self.status()["history"][-1]["signer"].startswith("dev@example.org"))

    def test_unhealthy_revision_rolls_back_and_keeps_the_sequence(self):
        w = self.w
        good = w.commit()
        self.configure(health={"settle": 0, "timeout": 3, "checks": [
            {"name": "web", "http": {"url": f"http://127.0.0.1:{w.port}/health", "status": 200}}]})
        self.agent("apply", str(self.create(good, "g.tar", "--sequence", "10", "--no-closure")), expect=0)
        self.assertEqual(w.health(), 200)
        gen = w.current_system()
        bad = w.commit(health_status=500)
        b = self.create(bad, "bad.tar", "--sequence", "11", "--no-closure")
        self.agent("apply", str(b), expect=1)
        self.assertEqual(w.current_system(), gen)
        self.assertEqual(w.health(), 200)
        s = json.loads(self.state_bytes())
        self.assertEqual(s["bundle-sequence"], 10)
        self.assertEqual(s["deployed"]["revision"], good)
        self.assertEqual(s["history"][-1]["result"], "rolled-back")
        self.assertEqual(s["history"][-1]["bundle"]["sequence"], 11)

    # -- usage -----------------------------------------------------------------------------

    def test_usage_errors(self):
        rev = self.w.commit()
        r = self.agent("verify", str(self.out / "missing.tar"), expect=2)
        self.assertIn("cannot open the bundle", r.stderr)
        self.agent("verify", expect=2)
        self.agent("apply", "a", "b", expect=2)
        self.create("no-such-rev", "x.tar", "--no-closure", expect=2)
        rsa, _ = openssl_keypair(self.w.tmp, "rsa", "rsa")
        r = self.create(rev, "x.tar", "--no-closure", expect=2, key=rsa)
        self.assertFalse((self.out / "x.tar").exists())
        r = self.w.agent("bundle", "create", "-o", str(self.out / "y.tar"), "--rev", rev)
        self.assertEqual(r.returncode, 2)
        r = self.w.agent("bundle", "create", "-o", str(self.out / "y.tar"), "--rev", rev, "--key", str(self.key),
                         "--repo", str(self.w.repo.work), "--expires", "soon")
        self.assertEqual(r.returncode, 2)
        self.configure(bundle={"keys": []})
        b = self.create(rev, "z.tar", "--no-closure")
        r = self.agent("verify", str(b), expect=2)
        self.assertIn("bundle.keys is empty", r.stderr)
        # Left nothing behind next to the output.
        self.assertEqual(sorted(p.name for p in self.out.iterdir()), ["z.tar"])


class DeltaTest(BundleBase):
    """Delta bundles (issue 18, item 2): bundle create --base FILE leaves out the NARs of the
    closure that FILE carried, the git history of FILE's revision and the image blobs FILE
    carried; apply takes a delta only where its base was applied and every path, object and
    blob it leaves out is on the machine, else refuses (exit 3, REASON=base, what is missing
    listed) with nothing changed."""

    def manifest_id(self, bundle):
        import hashlib
        with tarfile.open(bundle) as t:
            return hashlib.sha256(t.extractfile("manifest.json").read()).hexdigest()

    def test_delta_chain(self):
        w = self.w
        r1 = w.commit(payload_mib=2)
        base = self.create(r1, "base.tar", "--sequence", "1")
        r2 = w.commit(payload_mib=2)
        delta = self.create(r2, "delta.tar", "--sequence", "2", "--base", str(base))
        full = self.create(r2, "full.tar", "--sequence", "2")
        self.assertEqual(self.manifest(delta)["base"],
                         {"id": self.manifest_id(base), "sequence": 1, "revision": r1, "blobs": []})
        # The history up to r1 stays out: the delta's pack holds r2's commit and what changed.
        self.assertLess(pack_objects(delta), pack_objects(full) // 2, "the base's history was carried again")
        self.assertNotIn("base", self.manifest(full))
        print(f"\ndelta: full {full.stat().st_size} bytes, delta {delta.stat().st_size} bytes", file=sys.stderr)
        self.assertLess(delta.stat().st_size, full.stat().st_size // 4, "the 2 MiB payload was carried again")
        r3 = w.commit(payload_mib=2)
        delta2 = self.create(r3, "delta2.tar", "--sequence", "3", "--base", str(delta))
        # A delta of a delta leaves out what the machine holds since the base, whether the base
        # carried it or left it out itself: the payload travels in none of the two.
        print(f"delta of the delta: {delta2.stat().st_size} bytes", file=sys.stderr)
        self.assertLess(delta2.stat().st_size, full.stat().st_size // 4, "the 2 MiB payload was carried again")
        r = w.agent("bundle", "create", "-o", str(self.out / "x.tar"), "--rev", r3, "--repo", str(w.repo.work),
                    "--key", str(self.key), "--sequence", "1", "--base", str(base))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("is not above the base's", r.stderr)

        # A fresh machine that never applied the base.
        self.wipe_machine()
        r = self.assert_refused(delta, "which this machine has not applied", verify=False)
        self.assertIn("REASON=base", r.stderr)

        # The base, then the delta, then a delta of the delta.
        self.agent("apply", str(base), expect=0)
        state = (w.state_dir / "state.json").read_bytes()
        self.agent("apply", str(delta), expect=0)
        self.assertEqual(self.status()["revision"], r2)
        self.agent("apply", str(delta2), expect=0)
        self.assertEqual(self.status()["revision"], r3)

        # A machine that says it applied the base but whose store lacks what the delta leaves
        # out: refused, the missing path named.
        self.wipe_machine()
        (w.state_dir / "state.json").write_bytes(state)
        r = self.assert_refused(delta, "path(s) and blob(s) it leaves out are not on this machine", verify=False)
        self.assertIn("world-payload-2mib", r.stderr)


    @unittest.skipUnless(shutil.which("skopeo"), "skopeo is not installed (tools/install-deps installs it)")
    def test_delta_leaves_out_image_blobs_and_history(self):
        w = self.w
        reg = Registry(w.tmp)
        self.addCleanup(reg.stop)
        ckey, cpub = make_cosign_keypair(w.tmp, "ecdsa-p256", name="release")
        web = push_image(reg, "app/web", "1.0", layers=2, size=256 * 1024)
        api1 = push_image(reg, "app/api", "1.0", size=64 * 1024)
        api2 = push_image(reg, "app/api", "2.0", size=64 * 1024)
        for repo, digest in (("app/web", web), ("app/api", api1), ("app/api", api2)):
            sign_classic(reg, repo, digest, ckey)
        imported = w.tmp / "imported"
        policy = w.tmp / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.configure(images={"keys": [str(cpub)], "insecure-registries": [reg.host]},
                       bundle={"keys": [str(self.pub)],
                               "image-import-command": ["skopeo", "--policy", str(policy), "copy",
                                                        "oci:{layout}:image", f"dir:{imported}/{{name}}"]})
        r1 = w.commit(images={"web": f"{reg.host}/app/web:1.0", "api": f"{reg.host}/app/api:1.0"})
        base = self.create(r1, "base.tar", "--sequence", "1")
        r2 = w.commit(images={"web": f"{reg.host}/app/web:1.0", "api": f"{reg.host}/app/api:2.0"})
        delta = self.create(r2, "delta.tar", "--sequence", "2", "--base", str(base))
        full = self.create(r2, "full.tar", "--sequence", "2")

        # web did not change: its blobs (manifest, config, layers, signature) stay out; api's
        # new ones travel.
        m = self.manifest(delta)
        left_out = {b["path"].rsplit("/", 1)[1] for b in m["base"]["blobs"]}
        with tarfile.open(delta) as t:
            carried = {n.rsplit("/", 1)[1] for n in t.getnames() if "/blobs/sha256/" in n}
        self.assertIn(web.split(":")[1], left_out)
        self.assertIn(api2.split(":")[1], carried)
        self.assertNotIn(api2.split(":")[1], left_out)
        self.assertFalse(left_out & carried)
        print(f"\ndelta with images: full {full.stat().st_size} bytes, delta {delta.stat().st_size} bytes",
              file=sys.stderr)
        with tarfile.open(full) as t:
            in_full = {n.rsplit("/", 1)[1]: t.getmember(n).size for n in t.getnames() if "/blobs/sha256/" in n}
        self.assertEqual({b["path"].rsplit("/", 1)[1]: b["size"] for b in m["base"]["blobs"]},
                         {h: n for h, n in in_full.items() if h in left_out})
        self.assertLess(delta.stat().st_size, full.stat().st_size - sum(in_full[h] for h in left_out) + 4096)

        reg.stop()
        self.wipe_machine()
        imported.mkdir()
        self.agent("apply", str(base), expect=0)
        cache = w.state_dir / "image-blobs" / "sha256"
        self.assertIn(web.split(":")[1], os.listdir(cache))
        state = self.state_bytes()

        # A blob of the cache that no longer hashes to its name counts as missing.
        victim = cache / sorted(left_out)[0]
        good = victim.read_bytes()
        victim.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
        shutil.rmtree(imported)
        imported.mkdir()
        r = self.assert_refused(delta, "path(s) and blob(s) it leaves out are not on this machine", verify=False)
        self.assertIn(f"image blob sha256:{victim.name}", r.stderr)
        self.assertIn("REASON=base", r.stderr)
        self.assertEqual(list(imported.iterdir()), [], "an image was imported")
        victim.write_bytes(good)

        self.agent("apply", str(delta), expect=0)
        self.assertEqual(self.status()["revision"], r2)
        got = (imported / "api" / "manifest.json").read_bytes()
        self.assertEqual("sha256:" + hashlib.sha256(got).hexdigest(), api2)
        got = (imported / "web" / "manifest.json").read_bytes()
        self.assertEqual("sha256:" + hashlib.sha256(got).hexdigest(), web)
        # The cache now holds r2's blobs only: api 1.0's are gone.
        self.assertNotIn(api1.split(":")[1], os.listdir(cache))
        self.assertIn(api2.split(":")[1], os.listdir(cache))

        # A machine whose state says it applied the base but whose mirror lost the base's
        # history: the pack cannot be completed, refused as a missing base.
        self.wipe_machine()
        self.agent("apply", str(base), expect=0)
        shutil.rmtree(w.state_dir / "repo.git" if (w.state_dir / "repo.git").exists() else
                      next(p for p in w.state_dir.iterdir() if p.name.endswith(".git")))
        state = self.state_bytes()
        r = self.agent("apply", str(delta), expect=3)
        self.assertIn("REASON=base", r.stderr)
        self.assertIn(f"a delta of revision {r1}", r.stderr)
        self.assertEqual(self.state_bytes(), state, "a refused apply changed the state file")


class ProgressTest(BundleBase):
    """On a terminal, apply shows one progress line for the whole bundle (issue 18, item 4):
    read and verified, then imported, of the total of both, with the rate and the time left;
    nix copy's own lines fold into it. Not on a terminal (the journal): no progress line, one
    line per phase with its size and duration."""

    def on_terminal(self, *args):
        """The agent's stderr on a pseudo-terminal; (exit status, what the terminal got)."""
        import pty
        import select
        master, slave = pty.openpty()
        argv = [str(self.w.agent_bin()), "-c", str(self.w.config_path), *args]
        p = subprocess.Popen(argv, env=dict(self.w.env), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                             cwd=self.w.cwd)
        os.close(slave)
        out = b""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        os.close(master)
        return p.wait(timeout=60), out.decode(errors="replace")

    def test_one_line_for_read_and_import(self):
        w = self.w
        rev = w.commit(payload_mib=24)
        bundle = self.create(rev, "b.tar", "--sequence", "1")
        total_mib = bundle.stat().st_size / 2 ** 20
        self.wipe_machine()
        code, out = self.on_terminal("apply", str(bundle))
        self.assertEqual(code, 0, out)
        # The line is redrawn in place (\r ... ESC[K); what it showed last, once per redraw.
        frames = [f.split("\x1b[K")[0] for f in out.split("\r") if f.startswith("Applying '")]
        capture = "\n".join(frames)
        print(f"\nthe progress line, each redraw:\n{capture}", file=sys.stderr)
        self.assertTrue(frames, out)
        last = frames[-1]
        self.assertRegex(last, r"^Applying '.*b\.tar': 100% \(read ([0-9.]+) of \1 MiB, imported ([0-9.]+) of \2 MiB"
                               r"(, [0-9.]+ MiB/s)?\)$")
        read_mib = float(re.search(r"read [0-9.]+ of ([0-9.]+) MiB", last).group(1))
        imported_mib = float(re.search(r"imported [0-9.]+ of ([0-9.]+) MiB", last).group(1))
        self.assertAlmostEqual(read_mib, total_mib, delta=0.1)
        self.assertGreaterEqual(imported_mib, 24, "the 24 MiB payload is not counted as imported")
        # nix copy's own lines went into the progress line, not onto the terminal.
        self.assertNotIn("copying path", out)
        self.assertIn("Imported the closure of", out)
        self.assertEqual(self.status()["revision"], rev)

        # Not on a terminal: no progress line at all.
        self.wipe_machine()
        r = self.agent("apply", str(bundle), expect=0)
        self.assertNotIn("\r", r.stderr)
        self.assertNotIn("Applying '", r.stderr)
        self.assertRegex(r.stderr, r"Verified and extracted '.*b\.tar': [0-9.]+ MiB in [0-9.]+ s")
        self.assertRegex(r.stderr, r"Imported the closure of '.*b\.tar': [0-9.]+ MiB in [0-9.]+ s")


def pack_objects(bundle: Path) -> int:
    """The number of objects in the bundle's git pack (its header)."""
    with tarfile.open(bundle) as t:
        head = t.extractfile("repository.pack").read(12)
    assert head[:4] == b"PACK", head
    return int.from_bytes(head[8:12], "big")


class NixKeysTest(BundleBase):
    """Two independent keys (issue 18, item 3): with bundle.nix-keys, every path of the closure
    must also carry a valid narinfo signature by one of those nix keys; a bundle that a good
    bundle key signed, but whose closure is unsigned or signed by another nix key, is refused
    (exit 3) with nothing changed."""

    def nix_key(self, name):
        sec, pub = self.w.tmp / f"{name}.sec", self.w.tmp / f"{name}.pub"
        r = self.w.run(["nix-store", "--generate-binary-cache-key", name, str(sec), str(pub)])
        self.assertEqual(r.returncode, 0, r.stderr)
        return sec, pub.read_text().strip()

    def sign_closure(self, toplevel, sec):
        r = self.w.run(["nix", "store", "sign", "--recursive", "--key-file", str(sec), toplevel])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_closure_must_carry_a_nix_signature(self):
        w = self.w
        release_sec, release_pub = self.nix_key("ci-cache-1")
        other_sec, _ = self.nix_key("someone-else-1")
        rev = w.commit()
        unsigned = self.create(rev, "unsigned.tar", "--sequence", "1")
        toplevel = self.manifest(unsigned)["system"]
        self.sign_closure(toplevel, other_sec)
        by_other = self.create(rev, "other.tar", "--sequence", "2")
        self.sign_closure(toplevel, release_sec)
        signed = self.create(rev, "signed.tar", "--sequence", "3")

        self.wipe_machine()
        self.configure(bundle={"keys": [str(self.pub)], "nix-keys": [release_pub]})
        for bundle in (unsigned, by_other):
            with self.subTest(bundle=bundle.name):
                r = self.assert_refused(bundle, "not signed by a key of bundle.nix-keys", verify=False)
                self.assertIn("REASON=nix-signature", r.stderr)
                self.assertFalse(Path(toplevel).exists(), "a path was imported")
        self.agent("apply", str(signed), expect=0)
        self.assertEqual(w.current_system(), toplevel)

        # Without nix-keys the bundle key alone decides (as before).
        self.wipe_machine()
        self.configure()
        self.agent("apply", str(unsigned), expect=0)


LIBFAKETIME = next((p for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                                  "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                                  "/usr/lib/faketime/libfaketime.so.1") if os.path.exists(p)), None)


@unittest.skipUnless(LIBFAKETIME, "libfaketime is not installed (tools/install-deps installs faketime)")
class TimeFloorTest(BundleBase):
    """Trusted time (issue 18, item 1): expiry is judged against max(clock, time floor), the
    floor being the latest signed created time of a bundle that verified here; it survives
    restarts, never goes back, and a bundle signed far in the future is refused."""

    def clock(self, offset):
        """The agent's environment with its clock moved by offset (libfaketime, e.g. "-365d")."""
        env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        # Under AddressSanitizer (tools/test --sanitize) the preloaded library comes before the
        # ASan runtime, which ASan refuses unless told that this is intended.
        if os.environ.get("ASAN_OPTIONS") is not None:
            env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ["ASAN_OPTIONS"], "verify_asan_link_order=0"]))
        return env

    def floor(self):
        return json.loads((self.w.state_dir / "state.json").read_text()).get("time-floor")

    def test_a_clock_set_back_cannot_revive_an_expired_bundle(self):
        w = self.w
        rev = w.commit()
        early = self.create(rev, "early.tar", "--sequence", "20")                     # valid for 30 days
        short = self.create(rev, "short.tar", "--sequence", "10", "--expires", "2")  # valid for 2 s
        time.sleep(3.1)
        current = self.create(rev, "current.tar", "--sequence", "5")
        self.agent("apply", str(current), expect=0)
        created = self.manifest(current)["created"]
        self.assertEqual(self.floor(), created)
        self.assertGreaterEqual(created, self.manifest(short)["expires"])

        # A year back: by the clock the short-lived bundle is valid (and sequence 10 > 5), by the
        # floor it expired.
        before = self.state_bytes()
        for cmd in ("verify", "apply"):
            r = w.agent(cmd, str(short), env=self.clock("-365d"))
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("the time floor, as the clock is behind it", r.stderr)
            self.assertIn("is behind the time floor", r.stderr)
        self.assertEqual(self.state_bytes(), before, "a refused bundle changed the state")
        out = w.agent("status", env=self.clock("-365d")).stdout
        self.assertIn("Time floor:", out)
        self.assertIn("the clock is BEHIND it", out)
        self.assertEqual(json.loads(w.agent("status", "--json").stdout)["time-floor"], created)

        # An older signed time never lowers the floor (the bundle itself applies: sequence 20).
        self.agent("apply", str(early), expect=0)
        self.assertEqual(self.floor(), created)

    def test_a_bundle_signed_far_in_the_future_is_refused(self):
        w = self.w
        rev = w.commit()
        out = self.out / "future.tar"
        r = w.agent("bundle", "create", "-o", str(out), "--rev", rev, "--repo", str(w.repo.work),
                    "--key", str(self.key), "--no-closure", env=self.clock("+730d"))
        self.assertEqual(r.returncode, 0, r.stderr)
        before = self.state_bytes()
        r = self.agent("apply", str(out), expect=3)
        self.assertIn("more than 86400 s after this machine's time", r.stderr)
        self.assertIn("REASON=future", r.stderr)
        self.assertEqual(self.state_bytes(), before)
        self.assertIsNone(self.floor() if self.state_bytes() else None)


def private_mount_namespace():
    """Puts this test process (and every process it starts) into a mount namespace of its own,
    so that it can mount a tmpfs nobody else sees; the reason when that is not allowed here."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNS = 0x00020000
    if getattr(private_mount_namespace, "done", False):
        return None
    if libc.unshare(CLONE_NEWNS) != 0:
        return f"unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}"
    r = subprocess.run(["mount", "--make-rprivate", "/"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"mount --make-rprivate /: {r.stderr.strip()}"
    private_mount_namespace.done = True
    return None


class FullDiskTest(BundleBase):
    """ENOSPC while a bundle is applied (issue 17, item 4): the state directory on a small tmpfs,
    filled up: an environment failure (exit 6, the file system and the space needed named),
    never a refusal, and nothing changed; once there is space, the same bundle applies."""

    def test_full_disk_is_not_a_refusal(self):
        w = self.w
        why = private_mount_namespace()
        if why:
            self.skipTest(f"cannot mount a tmpfs here: {why}")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(w.state_dir)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", str(w.state_dir)], capture_output=True)

        first = w.commit()
        self.agent("apply", str(self.create(first, "1.tar", "--sequence", "1")), expect=0)
        second = w.commit()
        bundle = self.create(second, "2.tar", "--sequence", "2")
        before, system = self.state_bytes(), w.current_system()

        # Fill the file system up to less than the bundle's size.
        st = os.statvfs(w.state_dir)
        filler = w.state_dir / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - bundle.stat().st_size // 2))
        r = self.agent("apply", str(bundle), expect=6)
        self.assertIn(f"no space left on the file system of '{w.state_dir}", r.stderr)
        self.assertIn("MiB free; the bundle needs about", r.stderr)
        self.assertNotIn("REASON=bundle-integrity", r.stderr)
        self.assertEqual(self.state_bytes(), before, "a failed apply changed the state file")
        self.assertEqual(w.current_system(), system)
        self.assertEqual([p for p in os.listdir(w.state_dir / "staging")] if (w.state_dir / "staging").exists()
                         else [], [], "the staging directory stayed")

        filler.unlink()
        self.agent("apply", str(bundle), expect=0)
        self.assertEqual(self.status()["revision"], second)


if __name__ == "__main__":
    unittest.main()
