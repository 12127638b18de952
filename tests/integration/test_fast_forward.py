#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The git source's verifications, through the real binary and real nix: fast-forward only
(force-push, history rewrite, downgrade), moved tags, and SSH-signed commits against an
allowed_signers file, compared with `ssh-keygen -Y verify` as the reference."""

import json
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402


class GitVerifyTest(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.w.make_repo()

    def pull(self, expect):
        r = self.w.agent("pull")
        self.assertEqual(r.returncode, expect, f"stderr:\n{r.stderr}")
        return r

    def state(self):
        p = self.w.state_dir / "state.json"
        return p.read_bytes() if p.exists() else None

    def deployed(self):
        return json.loads(self.w.agent("status", "--json").stdout)["revision"]

    def assert_refused(self, *needles):
        """A refusal: exit 3, the reason named, nothing built, the state file as it was."""
        w = self.w
        before, gen = self.state(), w.profile_target()
        w.reset_call_logs()
        r = self.pull(3)
        for n in needles:
            self.assertIn(n, r.stderr)
        self.assertEqual(self.state(), before)
        self.assertEqual(w.profile_target(), gen)
        self.assertEqual(w.system_builds(), [])
        self.assertEqual(w.nix_calls(), [])
        status = json.loads(w.agent("status", "--json").stdout)
        self.assertEqual(status["last-run"]["result"], "refused")
        return r

    # -- fast-forward only -------------------------------------------------------------------

    def test_force_push_refused(self):
        w = self.w
        base = w.commit()
        deployed = w.commit()
        self.pull(0)
        w.repo.reset(base)
        other = w.commit(force=True)  # a sibling of the deployed commit
        self.assert_refused(other, deployed, "not a fast-forward")
        # the operator allows it: deployed
        w.write_config(repository={"allow-non-fast-forward": True})
        self.pull(0)
        self.assertEqual(self.deployed(), other)

    def test_history_rewrite_refused(self):
        w = self.w
        w.commit()
        deployed = w.commit()
        self.pull(0)
        # a new history that shares nothing with the old one
        w.repo.git("checkout", "-q", "--orphan", "rewritten")
        w.repo.git("rm", "-q", "-rf", "--cached", ".")
        rewritten = w.commit(branch="main", force=True)
        self.assert_refused(rewritten, deployed)

    def test_remote_without_the_deployed_revision_refused(self):
        """The history is rewritten (a new root commit on main) and the local mirror is
        damaged, so that it is cloned again from a remote that no longer has the deployed
        commit: nothing can show that the new revision descends from it. Refused (exit 3,
        non-fast-forward), never deployed; a build that took the missing commit for fine
        would deploy the rewritten history."""
        w = self.w
        w.commit()
        deployed = w.commit()
        self.pull(0)
        gen = w.profile_target()
        w.repo.git("checkout", "-q", "--orphan", "rewritten")
        w.repo.git("rm", "-q", "-rf", "--cached", ".")
        rewritten = w.commit(branch="main", force=True)
        self.assertEqual(w.repo.remote_rev("main"), rewritten)
        self.assertNotEqual(w.repo.git("merge-base", rewritten, deployed, check=False).returncode, 0,
                           "the rewritten history shares a commit with the deployed one")
        # Damaged as test_pull's test_damaged_mirror_is_cloned_again does: the agent creates
        # the mirror again, and fetches only what the remote's refs reach.
        mirror = w.state_dir / "repo.git"
        (mirror / "HEAD").write_text("garbage\n")
        (mirror / "config").write_text("[[[ not a config\n")

        r = self.assert_refused(rewritten, deployed, "the remote no longer has the deployed revision",
                                "REASON=non-fast-forward")
        self.assertIn("creating it again", r.stderr)
        # The case this is about: the mirror lacks the deployed commit, and has the new one.
        self.assertNotEqual(w.git("-C", str(mirror), "cat-file", "-e", f"{deployed}^{{commit}}",
                                  check=False).returncode, 0, "the mirror still has the deployed commit")
        self.assertEqual(w.git("-C", str(mirror), "cat-file", "-t", rewritten).stdout.strip(), "commit")
        self.assertEqual(self.deployed(), deployed)
        self.assertEqual(w.current_system(), gen)
        # Refused again at the next run (it is not taken for "nothing to do").
        self.assert_refused(rewritten, deployed, "the remote no longer has the deployed revision")
        self.assertEqual(self.deployed(), deployed)

    def test_downgrade_refused(self):
        w = self.w
        old = w.commit()
        new = w.commit()
        self.pull(0)
        self.assertEqual(self.deployed(), new)
        w.write_config(repository={"ref": old})
        self.assert_refused(old, new, "downgrade")
        # the branch moved back by force: the same
        w.write_config(repository={"ref": "main"})
        w.repo.push(old, "main", force=True)
        self.assert_refused(old, new, "downgrade")

    def test_moved_tag_is_a_new_revision(self):
        w = self.w
        r1 = w.commit()
        w.repo.tag("release")
        w.write_config(repository={"ref": "release"})
        self.pull(0)
        self.assertEqual(self.deployed(), r1)
        r2 = w.commit()
        w.reset_call_logs()
        self.pull(0)
        self.assertEqual(w.system_builds(), [], "the tag did not move: nothing to do")
        w.repo.tag("release", r2)
        self.pull(0)
        self.assertEqual(self.deployed(), r2)

    # -- signed commits ----------------------------------------------------------------------

    def keygen(self, name, kind="ed25519"):
        key = self.w.tmp / name
        args = ["-t", kind] + (["-b", "256"] if kind == "ecdsa" else ["-b", "3072"] if kind == "rsa" else [])
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", name, "-f", str(key)] + args, check=True)
        return key

    def allowed_signers(self, *keys):
        p = self.w.tmp / "allowed_signers"
        p.write_text("".join(f"{k.name}@example.org {k.with_suffix('.pub').read_text()}" for k in keys))
        return p

    def reference_verdict(self, rev, signers):
        """What `ssh-keygen -Y verify` (what git uses) says of rev's signature."""
        w = self.w
        raw = w.repo.git("cat-file", "commit", rev).stdout
        head, _, body = raw.partition("\n\n")
        lines, sig, in_sig = [], [], False
        for line in head.split("\n"):
            if line.startswith("gpgsig "):
                in_sig = True
                sig.append(line[len("gpgsig "):])
            elif in_sig and line.startswith(" "):
                sig.append(line[1:])
            else:
                in_sig = False
                lines.append(line)
        if not sig:
            return False
        payload = "\n".join(lines) + "\n\n" + body
        sigfile = w.tmp / "ref.sig"
        sigfile.write_text("\n".join(sig) + "\n")
        principal = subprocess.run(["ssh-keygen", "-Y", "find-principals", "-f", str(signers), "-s", str(sigfile)],
                                   capture_output=True, text=True).stdout.strip().split("\n")[0]
        if not principal:
            return False
        r = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", principal, "-n", "git",
                            "-s", str(sigfile)], input=payload, capture_output=True, text=True)
        return r.returncode == 0

    def test_signed_by_listed_key_deployed(self):
        w = self.w
        for kind in ("ed25519", "ecdsa", "rsa"):
            with self.subTest(kind=kind):
                key = self.keygen(f"release-{kind}", kind)
                signers = self.allowed_signers(key)
                w.write_config(repository={"allowed-signers": str(signers)})
                rev = w.commit(sign_key=key)
                self.assertTrue(self.reference_verdict(rev, signers))
                r = self.pull(0)
                self.assertEqual(self.deployed(), rev)
                self.assertIn("signed by", r.stderr)
                self.assertIn(f"release-{kind}@example.org", r.stderr)

    def test_unsigned_refused(self):
        w = self.w
        key = self.keygen("release")
        signers = self.allowed_signers(key)
        w.write_config(repository={"allowed-signers": str(signers)})
        rev = w.commit()
        self.assertFalse(self.reference_verdict(rev, signers))
        self.assert_refused(rev, "not signed")

    def test_malformed_allowed_signers_is_a_configuration_error(self):
        """A malformed allowed_signers file is the machine's configuration, not the revision's
        fault: exit 2 (as `config check` says), not a refusal, and the revision is not marked."""
        w = self.w
        key = self.keygen("release")
        signers = self.allowed_signers(key)
        signers.write_text(signers.read_text() + "ops@example.org ssh-ed25519\n")
        w.write_config(repository={"allowed-signers": str(signers)})
        before = (w.state_dir / "state.json").read_bytes() if (w.state_dir / "state.json").exists() else None
        w.commit(sign_key=key)
        r = self.pull(2)
        self.assertIn(f"{signers}:2:", r.stderr)
        self.assertNotIn("REASON=commit-signature", r.stderr)
        after = (w.state_dir / "state.json").read_bytes() if (w.state_dir / "state.json").exists() else None
        self.assertEqual(after, before, "the state changed")
        r = w.agent("config", "check")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{signers}:2:", r.stderr)

    def test_signed_by_unlisted_key_refused(self):
        w = self.w
        listed, stranger = self.keygen("release"), self.keygen("stranger")
        signers = self.allowed_signers(listed)
        w.write_config(repository={"allowed-signers": str(signers)})
        rev = w.commit(sign_key=stranger)
        self.assertFalse(self.reference_verdict(rev, signers))
        self.assert_refused(rev, "not acceptable")

    def test_tampered_signed_commit_refused(self):
        w = self.w
        key = self.keygen("release")
        signers = self.allowed_signers(key)
        w.write_config(repository={"allowed-signers": str(signers)})
        good = w.commit(sign_key=key)
        self.pull(0)
        # the next signed commit, with its message changed after signing: same signature
        signed = w.commit(sign_key=key, push=False)
        raw = w.repo.git("cat-file", "commit", signed).stdout
        tampered_raw = raw.replace("world: ", "world (tampered): ", 1)
        self.assertNotEqual(raw, tampered_raw)
        tampered = w.repo.git("hash-object", "-t", "commit", "-w", "--stdin", input=tampered_raw).stdout.strip()
        w.repo.push(tampered, "main")
        self.assertFalse(self.reference_verdict(tampered, signers))
        self.assert_refused(tampered, "not acceptable")
        self.assertEqual(self.deployed(), good)


if __name__ == "__main__":
    unittest.main()
