#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile offline bundles, one attack per test, written by bundlewriter.py: a second,
independent implementation of docs/bundle-format.md in Python (tarfile/hand-written tar
headers, hashlib, openssl, git pack-objects).

Every hostile bundle must be refused by `verify` (exit 3, the reason on stderr, nothing
written) and by `apply` (exit 3, state.json byte for byte as before, no staging directory
left, nothing new in the state directory but the run records last-run.json and metrics.json,
nothing created outside it) on a machine that has a deployed revision (applied from a valid
bundle of this writer, sequence 10).

The positive tests are the other half of the cross-check: valid bundles of this writer (ECDSA
and Ed25519, plain, gzip, xz and zstd, every legal naming and header form of the format)
verify, and apply deploys them, with and without a closure."""

import hashlib
import json
import os
import random
import subprocess
import sys
import time
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World, to_yaml  # noqa: E402
import bundlewriter as bw  # noqa: E402
from bundlewriter import DROP, Bundle, Entry, Key, ustar_header, write_tar  # noqa: E402

HOST = "testhost"
DEPLOYED_SEQUENCE = 10


def configure(world: World, keys: list) -> Path:
    """A bundle-only machine: no repository section, the given bundle keys."""
    cfg = world.config_dict(bundle={"keys": [str(k) for k in keys]})
    cfg.pop("repository", None)
    p = world.tmp / "config.yaml"
    p.write_text(to_yaml(cfg))
    world.config_path = p
    return p


def tree(path: Path) -> dict:
    """path -> (mode, size, mtime) for everything below path."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(path))] = (st.st_mode, st.st_size if not p.is_dir() else 0, st.st_mtime_ns)
    return out


def paths_below(path: Path, skip: tuple) -> set:
    """Every path below path, except below the directories in skip."""
    out = set()
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if Path(root, d) not in skip]
        out.update(str(Path(root, x)) for x in dirs + files)
    return out


def marker(world: World, rev: str) -> str:
    """The marker of world.json at rev: what the revision's toplevel says it was built from."""
    text = world.repo.git("show", f"{rev}:world.json").stdout
    return json.loads(text)["marker"]


class Machine:
    """A world (one machine) with r1 deployed from a valid bundle of sequence 10, and r2, a
    child of r1, to put into hostile bundles."""

    def __init__(self):
        self.w = World()
        try:
            self.repo = self.w.make_repo()
            self.r1 = self.w.commit()
            self.r2 = self.w.commit()
            keys = self.w.tmp / "keys"
            self.key = Key.generate(keys, "bundle")
            self.other = Key.generate(keys, "other")
            self.out = self.w.tmp / "bundles"
            self.out.mkdir()
            self.outside = self.w.tmp / "outside"   # targets of links out of the staging directory
            self.outside.mkdir()
            configure(self.w, [self.key.public])
            self.systems: dict[str, str] = {}
            b = Bundle(HOST, self.r1, key=self.key, sequence=DEPLOYED_SEQUENCE,
                       system=self.system_of(self.r1)).add_pack(self.repo.work)
            r = self.w.agent("apply", str(b.write(self.out / "base.tar")))
            if r.returncode != 0:
                raise RuntimeError(f"the valid base bundle was not applied ({r.returncode}):\n{r.stderr}")
            self.pack2 = bw.git_pack(self.repo.work, self.r2)
            self.dirty = False
        except BaseException:
            self.w.close()
            raise

    def system_of(self, rev: str) -> str:
        """The toplevel of rev, built here as the connected side would (the store is shared:
        bundles without a closure name a system this machine holds)."""
        if rev not in self.systems:
            self.systems[rev] = bw.build_system(self.w.run, self.w.deploy_ref(rev), HOST)
        return self.systems[rev]

    def close(self):
        self.w.close()


class HostileBundleTest(unittest.TestCase):
    machine: Machine | None = None

    @classmethod
    def tearDownClass(cls):
        if cls.machine is not None:
            cls.machine.close()
            cls.machine = None

    def setUp(self):
        cls = type(self)
        if cls.machine is not None and cls.machine.dirty:
            cls.machine.close()
            cls.machine = None
        if cls.machine is None:
            cls.machine = Machine()
        self.m = cls.machine
        self.w = self.m.w
        self.token = "escape-" + uuid.uuid4().hex[:12]

    # -- helpers ---------------------------------------------------------------------------

    def bundle(self, rev=None, **kw) -> Bundle:
        """A valid bundle of r2 (a fast-forward of the deployed r1), sequence above it."""
        kw.setdefault("key", self.m.key)
        kw.setdefault("sequence", 100)
        kw.setdefault("system", self.m.system_of(rev or self.m.r2))
        b = Bundle(HOST, rev or self.m.r2, **kw)
        b.add(b.repository, self.m.pack2)
        return b

    def signed(self, b: Bundle, manifest: bytes, **kw) -> bytes:
        """b with exactly these manifest bytes, validly signed by the trusted key."""
        return b.build(manifest=manifest, **kw)

    def state_bytes(self):
        p = self.w.state_dir / "state.json"
        return p.read_bytes() if p.exists() else None

    def outside_paths(self):
        return paths_below(self.w.tmp, (self.w.state_dir, self.m.out))

    def assert_refused(self, data: bytes, reason: str, *args, escapes=(), verify=True):
        """verify and apply refuse the bundle `data` with exit 3 and stderr matching the
        regular expression reason; nothing changes. verify=False: a refusal that only apply
        makes (about the pack's content, after steps 1-8), where verify may accept and the
        mirror may gain the pack's objects, as a fetch would."""
        w = self.w
        path = self.m.out / (self.id().rsplit(".", 1)[-1] + ".bundle")
        path.write_bytes(data)
        state, state_tree, outside = self.state_bytes(), tree(w.state_dir), self.outside_paths()
        self.assertIsNotNone(state, "the machine has no state file")
        escapes = [Path(p) for p in escapes] + [Path("/tmp") / self.token, w.tmp / self.token,
                                                  w.state_dir / self.token]

        r = w.agent("verify", str(path), *args)
        if verify:
            self.assertEqual(r.returncode, 3,
                             f"verify: expected a refusal (3)\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
            self.assertRegex(r.stderr, "(?i)" + reason, "verify: not the expected reason")
        else:
            self.assertIn(r.returncode, (0, 3), f"verify:\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertEqual(tree(w.state_dir), state_tree, "verify wrote into the state directory")

        r = w.agent("apply", str(path), *args)
        after = self.state_bytes()
        if after != state:
            self.m.dirty = True  # the next test gets a fresh machine
        self.assertEqual(r.returncode, 3, f"apply: expected a refusal (3)\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertRegex(r.stderr, "(?i)" + reason, "apply: not the expected reason")
        self.assertEqual(after, state, "a refused apply changed state.json")

        # Nothing new in the state directory: the run records may change, the staging
        # directory may be made afresh but must be empty.
        now = tree(w.state_dir)
        staging = [p for p in now if p.startswith("staging/")]
        self.assertEqual(staging, [], "apply left something in the staging directory")
        runtime = {"last-run.json", "metrics.json", "staging"}
        if not verify:
            self.m.dirty = True  # the mirror may hold the pack's objects: a fresh machine next
            mirror = [p for p in set(now) | set(state_tree) if p.split("/")[0] == "repo.git"]
            runtime.update(mirror)
        self.assertEqual(sorted(set(now) - set(state_tree) - runtime), [], "apply created files in the state directory")
        self.assertEqual(sorted(set(state_tree) - set(now) - runtime), [], "apply removed files from the state directory")
        for p, (mode, size, mtime) in state_tree.items():
            if p in runtime or p not in now:
                continue
            if os.path.isdir(w.state_dir / p):
                self.assertEqual(now[p][0], mode, p)
            else:
                self.assertEqual(now[p], (mode, size, mtime), f"apply changed {p}")
        self.assertEqual(sorted(self.outside_paths() - outside), [], "apply created files outside the state directory")
        for p in escapes:
            self.assertFalse(os.path.lexists(p), f"{p} was created")
        return r

    # -- the container: member types (section 2) ----------------------------------------

    def test_symlink_member(self):
        b = self.bundle()
        b.extra_listed["link"] = b""
        e = b.entries() + [Entry("link", type=b"2", linkname="/etc/passwd")]
        self.assert_refused(b.build(entries=e), "'link' is not a regular file.*symbolic link")

    def test_symlink_then_file_through_it(self):
        target = self.m.outside / self.token
        target.mkdir()
        b = self.bundle()
        b.extra_listed["dir"] = b""
        b.add("dir/payload", b"written through a symbolic link\n")
        e = b.entries()
        e.insert(2, Entry("dir", type=b"2", linkname=str(target)))
        # The manifest lists "dir" and "dir/payload": refused before any member is read
        # (section 2: no member is also a directory); the link itself is refused too.
        self.assert_refused(b.build(entries=e), "'dir' is not a regular file.*symbolic link|'dir' and 'dir/payload'")
        del b.extra_listed["dir"]
        e = b.entries()
        e.insert(2, Entry("dir", type=b"2", linkname=str(target)))
        self.assert_refused(b.build(entries=e), "'dir' is not a regular file.*symbolic link")
        self.assertEqual(list(target.iterdir()), [], "a file was written through the link")

    def test_hardlink_member(self):
        victim = self.m.outside / "victim"
        victim.write_text("do not change\n")
        b = self.bundle()
        b.add("hard", b"overwritten through a hard link\n")
        e = b.entries()
        e.insert(2, Entry("hard", type=b"1", linkname=str(victim)))
        self.assert_refused(b.build(entries=e), "'hard' is a hard link")
        self.assertEqual(victim.read_text(), "do not change\n")

    def test_character_device(self):
        b = self.bundle()
        b.extra_listed["null"] = b""
        e = b.entries() + [Entry("null", type=b"3", mode=0o666, devmajor=1, devminor=3)]
        self.assert_refused(b.build(entries=e), "'null' is not a regular file.*device")

    def test_block_device(self):
        b = self.bundle()
        b.extra_listed["sda"] = b""
        e = b.entries() + [Entry("sda", type=b"4", mode=0o660, devmajor=8, devminor=0)]
        self.assert_refused(b.build(entries=e), "'sda' is not a regular file.*device")

    def test_fifo(self):
        b = self.bundle()
        b.extra_listed["fifo"] = b""
        e = b.entries() + [Entry("fifo", type=b"6")]
        self.assert_refused(b.build(entries=e), "'fifo' is not a regular file.*FIFO")

    def test_directory_member(self):
        b = self.bundle()
        b.add("nix/nix-cache-info", b"StoreDir: /nix/store\n")
        e = b.entries()
        e.insert(2, Entry("nix", type=b"5", mode=0o755))
        self.assert_refused(b.build(entries=e), "'nix/?' is not a regular file.*directory")

    def test_contiguous_file_type_7(self):
        # Only typeflag 0 or NUL is a regular file (section 2); '7' is "every other type".
        b = self.bundle()
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data, type=b"7")
        self.assert_refused(b.build(entries=e), "not a regular file|type")

    def test_sparse_member(self):
        content = b"\0" * 500 + b"abcdef" + b"\0" * 494
        b = self.bundle()
        b.add("sparse", content)
        e = b.entries()
        e[-1] = Entry("sparse", b"abcdef", pax={"GNU.sparse.size": "1000", "GNU.sparse.numblocks": "1",
                                                 "GNU.sparse.offset": "500", "GNU.sparse.numbytes": "6"})
        self.assert_refused(b.build(entries=e), "sparse|'sparse' has")

    def test_global_pax_header_first(self):
        b = self.bundle()
        e = [bw.global_pax_header({"comment": "global headers are not allowed"})] + b.entries()
        self.assert_refused(b.build(entries=e), "global|not a regular file|type|first member")

    def test_global_pax_header_between_members(self):
        b = self.bundle()
        b.add("second", b"x")
        e = b.entries()
        e.insert(3, bw.global_pax_header({"path": "second"}))
        self.assert_refused(b.build(entries=e), "global|not a regular file|type")

    def test_gnu_long_name_header(self):
        # A GNU 'L' header names the next member; only pax names members (section 1).
        b = self.bundle()
        e = b.entries()
        e[2:3] = [Entry("././@LongLink", b"repository.pack\0", type=b"L"), Entry("decoy", e[2].data)]
        self.assert_refused(b.build(entries=e), "not a regular file|type|@LongLink|'decoy' is not in the manifest")

    def test_gnu_long_link_header(self):
        b = self.bundle()
        e = b.entries()
        e.insert(2, Entry("././@LongLink", str(self.m.outside).encode() + b"\0", type=b"K"))
        self.assert_refused(b.build(entries=e), "not a regular file|type|@LongLink")

    def test_solaris_extended_header_X(self):
        # 'X' is not the pax 'x': a member of another type, not a header to apply.
        b = self.bundle()
        e = b.entries()
        e[2:3] = [Entry("decoy", e[2].data, pax=None),]
        body = bw.pax_records({"path": "repository.pack"})
        e.insert(2, Entry(b"", raw=ustar_header("PaxHeaders/decoy", size=len(body), typeflag=b"X")
                          + body + b"\0" * (-len(body) % 512)))
        self.assert_refused(b.build(entries=e), "not a regular file|type|'decoy' is not in the manifest")

    def test_solaris_acl_header_A(self):
        b = self.bundle()
        e = b.entries()
        e.insert(2, Entry("acl", b"user::rwx\0", type=b"A"))
        self.assert_refused(b.build(entries=e), "not a regular file|type|'acl'")

    # -- the container: member names (section 2) -----------------------------------------

    def test_absolute_name(self):
        target = f"/tmp/{self.token}"
        b = self.bundle()
        e = b.entries() + [Entry(target, b"absolute\n")]
        self.assert_refused(b.build(entries=e), "invalid name", escapes=[target])

    def test_dot_dot_name(self):
        b = self.bundle()
        e = b.entries() + [Entry(f"../../{self.token}", b"escape\n")]
        self.assert_refused(b.build(entries=e), "invalid name",
                            escapes=[self.w.state_dir.parent / self.token, self.w.tmp.parent / self.token])

    def test_dot_dot_inside_name(self):
        b = self.bundle()
        e = b.entries() + [Entry(f"nix/../../../{self.token}", b"escape\n")]
        self.assert_refused(b.build(entries=e), "invalid name")

    def test_dot_dot_by_pax_path(self):
        # The ustar name is harmless; the pax path is what names the member.
        b = self.bundle()
        e = b.entries() + [Entry("harmless", b"escape\n", pax={"path": f"../../../{self.token}"})]
        self.assert_refused(b.build(entries=e), "invalid name",
                            escapes=[self.w.state_dir.parent / self.token, self.w.tmp.parent / self.token])

    def test_dot_dot_by_ustar_prefix(self):
        b = self.bundle()
        data = b.entries()[2].data
        raw = ustar_header(self.token, prefix="../..", size=len(data)) + data + b"\0" * (-len(data) % 512)
        e = b.entries() + [Entry(b"", raw=raw)]
        self.assert_refused(b.build(entries=e), "invalid name", escapes=[self.w.state_dir.parent / self.token])

    def test_hidden_name(self):
        b = self.bundle()
        e = b.entries() + [Entry("nix/.hidden", b"x")]
        self.assert_refused(b.build(entries=e), "invalid name")

    def test_empty_component(self):
        b = self.bundle()
        e = b.entries() + [Entry("nix//info", b"x")]
        self.assert_refused(b.build(entries=e), "invalid name")

    def test_trailing_slash(self):
        b = self.bundle()
        e = b.entries() + [Entry("nix/", b"")]
        self.assert_refused(b.build(entries=e), "invalid name|not a regular file")

    def test_bad_characters(self):
        for name in ["with space", "back\\slash", "semi;colon", "tab\tname", "colon:name", "star*"]:
            with self.subTest(name=name):
                b = self.bundle()
                e = b.entries() + [Entry(name, b"x")]
                self.assert_refused(b.build(entries=e), "invalid name")

    def test_non_ascii_name(self):
        b = self.bundle()
        e = b.entries() + [Entry("caf\u00e9", b"x")]   # a pax path in UTF-8
        self.assert_refused(b.build(entries=e), "invalid name")

    def test_nul_in_pax_path(self):
        # The pax path "repository.pack\0junk" has a NUL: not a valid name (section 2), and
        # not the listed "repository.pack" (a C string would cut it there).
        b = self.bundle()
        e = b.entries()
        e[2] = Entry("junk", e[2].data, pax={"path": b"repository.pack\0junk"})
        self.assert_refused(b.build(entries=e), "invalid name|not in the manifest")

    def test_vendor_keyword_does_not_name_a_member(self):
        # Vendor keywords are ignored (section 1): GNU.sparse.name must not rename "decoy"
        # into the listed "repository.pack".
        b = self.bundle()
        e = b.entries()
        e[2] = Entry("decoy", e[2].data, pax={"GNU.sparse.name": "repository.pack"})
        self.assert_refused(b.build(entries=e), "'decoy' is not in the manifest")

    def test_name_too_long(self):
        name = "/".join(["a" * 200] * 6)   # 1205 bytes, components of 200
        b = self.bundle()
        e = b.entries() + [Entry(name, b"x")]
        self.assert_refused(b.build(entries=e), "invalid name")

    def test_too_many_components(self):
        name = "/".join(["d"] * 33)
        b = self.bundle()
        e = b.entries() + [Entry(name, b"x")]
        self.assert_refused(b.build(entries=e), "invalid name")

    def test_component_too_long(self):
        name = "nix/" + "c" * 256
        b = self.bundle()
        e = b.entries() + [Entry(name, b"x")]
        self.assert_refused(b.build(entries=e), "invalid name")

    def test_duplicate_member(self):
        b = self.bundle()
        e = b.entries()
        e.append(Entry(e[2].name, e[2].data))
        self.assert_refused(b.build(entries=e), "'repository.pack' appears twice")

    def test_duplicate_member_with_other_content(self):
        # The second copy would overwrite the verified first one when extracted.
        b = self.bundle()
        e = b.entries()
        e.append(Entry(e[2].name, b"PACK" + b"\0" * (len(e[2].data) - 4)))
        self.assert_refused(b.build(entries=e), "'repository.pack' appears twice|does not match")

    def test_manifest_twice(self):
        b = self.bundle()
        e = b.entries()
        e.append(Entry("manifest.json", e[0].data))
        self.assert_refused(b.build(entries=e), "'manifest.json' is not in the manifest|twice")

    def test_signature_twice(self):
        b = self.bundle()
        e = b.entries()
        e.append(Entry("manifest.sig", e[1].data))
        self.assert_refused(b.build(entries=e), "'manifest.sig' is not in the manifest|twice")

    # -- the container: order and shape --------------------------------------------------

    def test_signature_first(self):
        b = self.bundle()
        e = b.entries()
        e[0], e[1] = e[1], e[0]
        self.assert_refused(b.build(entries=e), "first member is 'manifest.sig'")

    def test_member_before_manifest(self):
        b = self.bundle()
        e = b.entries()
        e = [e[2], e[0], e[1]]
        self.assert_refused(b.build(entries=e), "first member is 'repository.pack'")

    def test_member_between_manifest_and_signature(self):
        b = self.bundle()
        e = b.entries()
        e = [e[0], e[2], e[1]]
        self.assert_refused(b.build(entries=e), "second member is 'repository.pack'")

    def test_no_signature_member(self):
        b = self.bundle()
        e = b.entries()
        del e[1]
        self.assert_refused(b.build(entries=e), "second member is 'repository.pack'|manifest.sig")

    def test_only_the_manifest(self):
        b = self.bundle()
        e = b.entries()[:1]
        self.assert_refused(b.build(entries=e), "ends before 'manifest.sig'")

    def test_empty_file(self):
        self.assert_refused(b"", "not a tar archive|not a readable tar archive|ends before")

    def test_not_a_tar_archive(self):
        self.assert_refused(random.Random(7).randbytes(10240), "not a tar archive|not a readable tar")

    def test_header_size_larger_than_listed(self):
        b = self.bundle()
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data + b"appended")
        self.assert_refused(b.build(entries=e), rf"'repository.pack' has {len(self.m.pack2) + 8} bytes, "
                            rf"{len(self.m.pack2)} listed")

    def test_header_size_smaller_than_listed(self):
        b = self.bundle()
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data[:-1])
        self.assert_refused(b.build(entries=e), "'repository.pack' has .* bytes, .* listed")

    def test_header_size_lies_about_the_data(self):
        # The header states the listed size, the data is 1 KiB longer: what follows the
        # stated size is read as the next header.
        b = self.bundle()
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data + b"\x01" * 1024, header_size=len(e[2].data))
        self.assert_refused(b.build(entries=e), "not a readable tar archive|damaged|truncated")

    def test_header_size_claims_more_than_the_archive_holds(self):
        b = self.bundle()
        big = 1 << 40
        b.member_overrides["repository.pack"] = {"size": big}
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data, header_size=big)
        self.assert_refused(b.build(entries=e, end=False), "truncated|unreadable|not a readable")

    def test_pax_size_lies(self):
        # The pax size keyword replaces the header's size; here it is not the listed one.
        b = self.bundle()
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data, pax_size=len(e[2].data) + 512)
        self.assert_refused(b.build(entries=e), "'repository.pack' has .* bytes, .* listed")

    def test_size_field_not_octal(self):
        b = self.bundle()
        d = b.entries()[2].data
        raw = ustar_header("repository.pack", size_field=b"9999999999x\0") + d + b"\0" * (-len(d) % 512)
        e = b.entries()[:2] + [Entry(b"", raw=raw)]
        self.assert_refused(b.build(entries=e), "not a readable|'repository.pack' has|invalid")

    def test_negative_size_field(self):
        b = self.bundle()
        d = b.entries()[2].data
        raw = ustar_header("repository.pack", size_field=b"\xff" * 12) + d + b"\0" * (-len(d) % 512)
        e = b.entries()[:2] + [Entry(b"", raw=raw)]
        self.assert_refused(b.build(entries=e), "negative|not a readable|has no size")

    def test_bad_header_checksum(self):
        b = self.bundle()
        d = b.entries()[2].data
        raw = ustar_header("repository.pack", size=len(d), checksum=1) + d + b"\0" * (-len(d) % 512)
        e = b.entries()[:2] + [Entry(b"", raw=raw)]
        self.assert_refused(b.build(entries=e), "not a readable tar archive|damaged")

    def test_truncated_in_a_member(self):
        data = self.bundle().build()
        cut = data[:len(data) - 1024 - 2048]   # in the middle of the pack
        self.assert_refused(cut, "'repository.pack' is truncated|truncated")

    def test_truncated_in_a_header(self):
        b = self.bundle()
        b.add("second", b"y" * 100)
        data = b.build()
        head = len(write_tar(b.entries()[:3], end=False))
        self.assert_refused(data[:head + 200], "truncated|not a readable|missing")

    def test_truncated_in_the_manifest(self):
        data = self.bundle().build()
        self.assert_refused(data[:512 + 100], "'manifest.json' is truncated|truncated")

    def test_truncated_after_the_signature(self):
        b = self.bundle()
        data = write_tar(b.entries()[:2])
        self.assert_refused(data, "'repository.pack' is listed in the manifest but missing")

    def test_garbage_after_the_manifest(self):
        b = self.bundle()
        e = b.entries()
        garbage = random.Random(1).randbytes(4096)
        data = write_tar(e[:1], end=False) + garbage + write_tar(e[1:])
        self.assert_refused(data, "not a readable tar archive|damaged")

    def test_garbage_between_members(self):
        b = self.bundle()
        b.add("second", b"z")
        e = b.entries()
        data = write_tar(e[:3], end=False) + random.Random(2).randbytes(2048) + write_tar(e[3:])
        self.assert_refused(data, "not a readable tar archive|damaged")

    def test_member_is_also_a_directory(self):
        # "a/b" implies a directory "a" (section 2), and "a" is a regular file: no tree can
        # hold both. verify must not accept what apply cannot stage, and apply must refuse
        # it (3), not call it a usage error.
        b = self.bundle()
        b.add("a", b"a file\n")
        b.add("a/b", b"below the file\n")
        self.assert_refused(b.build(), "'a/b'|'a'")

    def test_directory_then_file_of_the_same_name(self):
        b = self.bundle()
        b.add("a/b", b"below the file\n")
        b.add("a", b"a file\n")
        self.assert_refused(b.build(), "'a/b'|'a'")

    # -- the pack (section 5.1; apply only) -----------------------------------------------

    def test_pack_without_the_revision(self):
        b = self.bundle()
        b.members["repository.pack"] = bw.git_pack(self.m.repo.work, self.m.r1)
        self.assert_refused(b.build(), "pack does not hold commit", verify=False)

    def test_pack_that_is_not_a_pack(self):
        b = self.bundle()
        b.members["repository.pack"] = b"PACK\0\0\0\2" + b"\x5a" * 200
        self.assert_refused(b.build(), "pack is not valid|not a valid pack|pack", verify=False)

    def test_pack_claiming_billions_of_objects(self):
        """A pack header that claims 4 294 967 295 objects in 120 bytes is refused before
        libgit2 sizes its tables by it (gigabytes)."""
        b = self.bundle()
        b.members["repository.pack"] = b"PACK\0\0\0\2\xff\xff\xff\xff" + b"\0" * 108
        self.assert_refused(b.build(), "claims 4294967295 objects in 120 bytes", verify=False)

    def test_pack_missing_the_revisions_tree(self):
        # Only the commit object: not "every commit, tree and blob reachable from it".
        only = subprocess.run(["git", "-C", str(self.m.repo.work), "pack-objects", "--stdout"],
                              input=f"{self.m.r2}\n".encode(), capture_output=True, check=True).stdout
        b = self.bundle()
        b.members["repository.pack"] = only
        self.assert_refused(b.build(), "pack|tree|object|missing|incomplete", verify=False)

    def test_incomplete_pack_does_not_poison_the_mirror(self):
        # Whatever apply makes of a pack holding only the commit, the complete bundle of the
        # same revision deploys afterwards.
        self.m.dirty = True
        only = subprocess.run(["git", "-C", str(self.m.repo.work), "pack-objects", "--stdout"],
                              input=f"{self.m.r2}\n".encode(), capture_output=True, check=True).stdout
        b = self.bundle(sequence=100)
        b.members["repository.pack"] = only
        r = self.w.agent("apply", str(b.write(self.m.out / "incomplete.tar")))
        self.assertNotEqual(r.returncode, 0, r.stderr)
        good = self.bundle(sequence=101).write(self.m.out / "complete.tar")
        r = self.w.agent("apply", str(good))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.w.marker_of(self.w.current_system()), marker(self.w, self.m.r2))

    # -- compression (section 1) ----------------------------------------------------------

    def test_bzip2(self):
        self.assert_refused(self.bundle().build(compression="bzip2"), "not a tar archive|not a readable")

    def test_zip(self):
        self.assert_refused(self.bundle().build(compression="zip"), "not a tar archive|not a readable")

    def test_lzma_alone(self):
        import lzma
        data = lzma.compress(self.bundle().build(), format=lzma.FORMAT_ALONE)
        self.assert_refused(data, "not a tar archive|not a readable")

    def test_compressed_twice(self):
        # gzip inside xz: the xz stream's content is not a tar archive.
        data = bw.compress(bw.compress(self.bundle().build(), "gzip"), "xz")
        self.assert_refused(data, "not a tar archive|not a readable|compress")

    def test_truncated_gzip(self):
        data = self.bundle().build(compression="gzip")
        self.assert_refused(data[:len(data) // 2], "truncated|not a readable|unreadable|missing")

    def test_tampered_member_in_zstd(self):
        b = self.bundle()
        e = b.entries()
        d = bytearray(e[2].data)
        d[100] ^= 1
        e[2] = Entry(e[2].name, bytes(d))
        self.assert_refused(b.build(entries=e, compression="zstd"), "'repository.pack' does not match its sha256")

    # -- the manifest (section 3) ---------------------------------------------------------

    def test_unknown_key(self):
        b = self.bundle()
        b.manifest_overrides["comment"] = "an unknown key"
        self.assert_refused(b.build(), "manifest.*comment|manifest.*unknown|manifest.*unpacked")

    def test_unknown_key_in_a_member(self):
        b = self.bundle()
        b.member_overrides["repository.pack"] = {"mode": 0o755}
        self.assert_refused(b.build(), r"manifest: members\[0\]")

    def test_unknown_key_in_the_closure(self):
        b = self.bundle()
        b.add("nix/nix-cache-info", b"StoreDir: x\n")
        b.closure = {"store-dir": str(self.w.store_dir), "cache": "nix", "paths": [self.w.current_system()],
                     "compression": "none"}
        self.assert_refused(b.build(), "manifest: closure")

    def test_missing_key(self):
        b = self.bundle()
        b.manifest_overrides["expires"] = DROP
        self.assert_refused(b.build(), "manifest.*expires")

    def test_missing_members_key(self):
        b = self.bundle()
        b.manifest_overrides["members"] = DROP
        self.assert_refused(b.build(), "manifest.*members")

    def test_version_1(self):
        """The first format named no system: the machine would have to evaluate to know what
        to activate. Refused."""
        b = self.bundle()
        b.manifest_overrides["version"] = 1
        b.manifest_overrides["system"] = DROP
        b.manifest_overrides["containers"] = DROP
        self.assert_refused(b.build(), "version 1")

    def test_version_3(self):
        b = self.bundle()
        b.manifest_overrides["version"] = 3
        self.assert_refused(b.build(), "version 3")

    def test_missing_system(self):
        b = self.bundle()
        b.manifest_overrides["system"] = DROP
        self.assert_refused(b.build(), "manifest.*system")

    def test_system_not_a_store_path(self):
        for system in ("relative/x", "/", "/nix/store/../etc/" + "0" * 32 + "-x", "/nix/store//" + "0" * 32 + "-x",
                       "/nix/store/short", 7, None, ["/nix/store/x"]):
            with self.subTest(system=system):
                b = self.bundle()
                b.manifest_overrides["system"] = system
                self.assert_refused(b.build(), "'system' must be a store path")

    def test_system_outside_the_closure(self):
        """A closure that does not hold the system it names: refused before anything is
        imported."""
        b = self.bundle()
        sd = str(self.w.store_dir)
        b.add("nix/nix-cache-info", f"StoreDir: {sd}\n".encode())
        b.closure = {"store-dir": sd, "cache": "nix", "paths": [f"{sd}/{'1' * 32}-nixos-system-testhost-world"]}
        self.assert_refused(b.build(), "'system' is not one of closure.paths")

    def test_container_image_not_in_the_bundle(self):
        b = self.bundle()
        b.containers = {"web": "registry.example/app:1"}
        b.images = []
        self.assert_refused(b.build(), "containers.web: its image 'registry.example/app:1' is not in 'images'")

    def test_containers_not_an_object(self):
        for containers in ([], "web", None, {"web": 5}, {"": "r/a:1"}, {"w\x1beb": "r/a:1"}):
            with self.subTest(containers=containers):
                b = self.bundle()
                b.manifest_overrides["containers"] = containers
                self.assert_refused(b.build(), "manifest.*containers")

    def test_base_malformed(self):
        """A delta's base: a bundle id and a sequence below the delta's, nothing else."""
        for base, needle in (({"id": "ab", "sequence": 1}, "'base.id' must be a bundle id"),
                             ({"id": "A" * 64, "sequence": 1}, "'base.id' must be a bundle id"),
                             ({"id": "a" * 64, "sequence": 10 ** 6}, "'base.sequence' is not below 'sequence'"),
                             ({"id": "a" * 64, "sequence": 0}, "base.sequence"),
                             ({"id": "a" * 64}, "manifest: 'base'"),
                             ({"id": "a" * 64, "sequence": 1, "members": []}, "manifest: 'base'"),
                             ({"id": "a" * 64, "sequence": 1, "revision": "HEAD"}, "'base.revision' must be a commit id"),
                             ({"id": "a" * 64, "sequence": 1, "revision": "A" * 40}, "'base.revision' must be a commit id"),
                             ({"id": "a" * 64, "sequence": 1, "blobs": {}}, "'base.blobs' must be an array"),
                             ({"id": "a" * 64, "sequence": 1, "blobs": [{"path": "images/0/blobs/sha256/" + "a" * 64}]},
                              r"base\.blobs\[0\]"),
                             ({"id": "a" * 64, "sequence": 1,
                               "blobs": [{"path": "images/0/blobs/sha256/" + "a" * 64, "size": 1, "x": 1}]},
                              r"base\.blobs\[0\]"),
                             # Not below an image layout of the bundle (it has none), traversal.
                             ({"id": "a" * 64, "sequence": 1, "blobs": [{"path": "images/0/blobs/sha256/" + "a" * 64,
                                                                         "size": 1}]}, "is not a blob of an image layout"),
                             ({"id": "a" * 64, "sequence": 1, "blobs": [{"path": "../state.json", "size": 1}]},
                              "is not a blob of an image layout"),
                             ("a" * 64, "manifest: 'base'")):
            with self.subTest(base=base):
                b = self.bundle()
                b.manifest_overrides["base"] = base
                self.assert_refused(b.build(), needle)

    def test_base_blobs_of_a_layout(self):
        """base.blobs below a real layout of the bundle: each named by a digest, below
        blobs/sha256 of that layout, listed once, not a member as well."""
        blob = "images/0/blobs/sha256/" + "c" * 64
        for blobs, needle in (([{"path": "images/0/blobs/sha256/" + "c" * 63, "size": 1}], "is not a blob of an image layout"),
                              ([{"path": "images/0/blobs/sha256/" + "C" * 64, "size": 1}], "is not a blob of an image layout"),
                              ([{"path": "images/0/blobs/sha512/" + "c" * 64, "size": 1}], "is not a blob of an image layout"),
                              ([{"path": "images/0/blobs/sha256/../../../" + "c" * 64, "size": 1}],
                               "is not a blob of an image layout"),
                              ([{"path": "images/01/blobs/sha256/" + "c" * 64, "size": 1}], "is not a blob of an image layout"),
                              ([{"path": blob, "size": 1}, {"path": blob, "size": 1}], "is listed twice"),
                              ([{"path": blob, "size": -1}], r"base\.blobs\[0\]\.size"),
                              ([{"path": "images/0/oci-layout", "size": 1}], "is not a blob of an image layout")):
            with self.subTest(blobs=blobs):
                b = self.bundle()
                b.add("images/0/oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
                b.add("images/0/index.json", b'{"schemaVersion":2,"manifests":[]}')
                b.images = [{"reference": "registry.example:5000/app/web:1.4", "digest": "sha256:" + "b" * 64,
                             "layout": "images/0"}]
                b.manifest_overrides["base"] = {"id": "a" * 64, "sequence": 1, "blobs": blobs}
                self.assert_refused(b.build(), needle)
        b = self.bundle()
        b.add("images/0/oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        b.add("images/0/index.json", b'{"schemaVersion":2,"manifests":[]}')
        b.add(blob, b"x")
        b.images = [{"reference": "registry.example:5000/app/web:1.4", "digest": "sha256:" + "b" * 64,
                     "layout": "images/0"}]
        b.manifest_overrides["base"] = {"id": "a" * 64, "sequence": 1, "blobs": [{"path": blob, "size": 1}]}
        self.assert_refused(b.build(), "is a member as well")

    def test_version_as_string(self):
        b = self.bundle()
        b.manifest_overrides["version"] = "1"
        self.assert_refused(b.build(), "manifest.*version")

    def test_version_as_real(self):
        b = self.bundle()
        m = b.manifest_bytes().replace(b'"version":2,', b'"version":2.0,')
        self.assertIn(b"2.0", m)
        self.assert_refused(self.signed(b, m), "manifest.*version")

    def test_wrong_format(self):
        b = self.bundle()
        b.manifest_overrides["format"] = "atticd-agent-bundle-ng"
        self.assert_refused(b.build(), "manifest.*format")

    def test_sequence_as_string(self):
        b = self.bundle()
        b.manifest_overrides["sequence"] = "100"
        self.assert_refused(b.build(), "manifest.*'sequence' must be an integer")

    def test_sequence_zero(self):
        b = self.bundle()
        b.manifest_overrides["sequence"] = 0
        self.assert_refused(b.build(), "manifest.*'sequence'", "--allow-downgrade")

    def test_sequence_too_large(self):
        b = self.bundle()
        b.manifest_overrides["sequence"] = 2 ** 53
        self.assert_refused(b.build(), "manifest.*'sequence'")

    def test_sequence_negative(self):
        b = self.bundle()
        b.manifest_overrides["sequence"] = -5
        self.assert_refused(b.build(), "manifest.*'sequence'", "--allow-downgrade")

    def test_host_not_a_string(self):
        b = self.bundle()
        b.manifest_overrides["host"] = 42
        self.assert_refused(b.build(), "manifest.*'host'")

    def test_members_not_an_array(self):
        b = self.bundle()
        b.manifest_overrides["members"] = {"repository.pack": {"size": len(self.m.pack2)}}
        self.assert_refused(b.build(), "manifest.*'members' must be an array")

    def test_member_size_as_string(self):
        b = self.bundle()
        b.member_overrides["repository.pack"] = {"size": str(len(self.m.pack2))}
        self.assert_refused(b.build(), r"manifest: members\[0\]")

    def test_member_size_negative(self):
        b = self.bundle()
        b.member_overrides["repository.pack"] = {"size": -1}
        self.assert_refused(b.build(), r"manifest: members\[0\].*size")

    def test_member_size_too_large(self):
        b = self.bundle()
        b.member_overrides["repository.pack"] = {"size": 2 ** 53}
        self.assert_refused(b.build(), r"manifest: members\[0\].*size")

    def test_member_sha256_uppercase(self):
        b = self.bundle()
        b.member_overrides["repository.pack"] = {"sha256": bw.sha256_hex(self.m.pack2).upper()}
        self.assert_refused(b.build(), "sha256 is not 64 lowercase hex")

    def test_member_sha256_short(self):
        b = self.bundle()
        b.member_overrides["repository.pack"] = {"sha256": bw.sha256_hex(self.m.pack2)[:63]}
        self.assert_refused(b.build(), "sha256 is not 64 lowercase hex")

    def test_revision_uppercase(self):
        b = self.bundle()
        b.manifest_overrides["revision"] = self.m.r2.upper()
        self.assert_refused(b.build(), "'revision' must be a commit id")

    def test_revision_abbreviated(self):
        b = self.bundle()
        b.manifest_overrides["revision"] = self.m.r2[:12]
        self.assert_refused(b.build(), "'revision' must be a commit id")

    def test_closure_wrong_type(self):
        b = self.bundle()
        b.manifest_overrides["closure"] = "none"
        self.assert_refused(b.build(), "manifest: closure")

    def test_images_wrong_type(self):
        b = self.bundle()
        b.manifest_overrides["images"] = {}
        self.assert_refused(b.build(), "manifest: images")

    def test_image_digest_invalid(self):
        b = self.bundle()
        b.add("images/0/oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        b.images = [{"reference": "registry.example/app:1", "digest": "sha256:abc", "layout": "images/0"}]
        self.assert_refused(b.build(), r"manifest: images\[0\].*digest")

    def test_too_many_images(self):
        b = self.bundle()
        b.add("images/0/oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        b.images = [{"reference": f"registry.example/app:{i}", "digest": "sha256:" + "a" * 64, "layout": "images/0"}
                    for i in range(1025)]
        self.assert_refused(b.build(), "manifest: images.*1024")

    def test_too_many_closure_paths(self):
        b = self.bundle()
        b.add("nix/nix-cache-info", b"StoreDir: x\n")
        sd = str(self.w.store_dir)
        b.closure = {"store-dir": sd, "cache": "nix",
                     "paths": [f"{sd}/{i:032d}-p" for i in range(4097)]}
        self.assert_refused(b.build(), "manifest: closure.*4096")

    def test_expired(self):
        b = self.bundle(created=1_600_000_000, expires=1_600_000_600)
        self.assert_refused(b.build(), "expired")

    def test_expires_now(self):
        now = int(time.time())
        b = self.bundle(created=now - 60, expires=now)
        self.assert_refused(b.build(), "expired")

    def test_expires_equals_created(self):
        b = self.bundle(created=4_000_000_000, expires=4_000_000_000)
        self.assert_refused(b.build(), "'expires' is not after 'created'")

    def test_expires_before_created(self):
        b = self.bundle(created=4_000_000_000, expires=3_999_999_999)
        self.assert_refused(b.build(), "'expires' is not after 'created'")

    def test_other_host(self):
        b = Bundle("otherhost", self.m.r2, key=self.m.key, sequence=100, system=self.m.system_of(self.m.r2))
        b.add(b.repository, self.m.pack2)
        self.assert_refused(b.build(), "for host 'otherhost'")

    def test_other_store_dir(self):
        b = self.bundle()
        b.add("nix/nix-cache-info", b"StoreDir: /nix/store\n")
        b.closure = {"store-dir": "/nix/store", "cache": "nix",
                     "paths": ["/nix/store/" + "0" * 32 + "-nixos-system-testhost-world"]}
        b.system = b.closure["paths"][0]
        self.assert_refused(b.build(), "store '/nix/store'")

    def test_sequence_lower(self):
        self.assert_refused(self.bundle(sequence=DEPLOYED_SEQUENCE - 5).build(), "sequence 5 is not above 10")

    def test_sequence_equal(self):
        self.assert_refused(self.bundle(sequence=DEPLOYED_SEQUENCE).build(), "sequence 10 is not above 10")

    def test_replay_of_the_deployed_bundle(self):
        self.assert_refused((self.m.out / "base.tar").read_bytes(), "sequence 10 is not above 10")

    def test_listed_member_missing(self):
        b = self.bundle()
        b.extra_listed["nix/nix-cache-info"] = b"StoreDir: x\n"
        self.assert_refused(b.build(), "'nix/nix-cache-info' is listed in the manifest but missing")

    def test_unlisted_member(self):
        b = self.bundle()
        b.add("extra", b"not listed\n")
        b.unlisted.add("extra")
        self.assert_refused(b.build(), "'extra' is not in the manifest")

    def test_hash_mismatch(self):
        b = self.bundle()
        b.add("data", b"the listed content\n")
        e = b.entries()
        e[-1] = Entry("data", b"the LISTED content\n")
        self.assert_refused(b.build(entries=e), "'data' does not match its sha256")

    def test_hash_mismatch_in_an_empty_member(self):
        b = self.bundle()
        b.add("empty", b"")
        b.member_overrides["empty"] = {"sha256": "0" * 64}
        self.assert_refused(b.build(), "'empty' does not match its sha256")

    def test_repository_not_listed(self):
        b = self.bundle()
        b.repository = "other.pack"
        b.members = {"repository.pack": self.m.pack2}
        self.assert_refused(b.build(), "repository 'other.pack' is not a listed member")

    def test_repository_invalid_name(self):
        b = self.bundle()
        b.manifest_overrides["repository"] = "../repository.pack"
        self.assert_refused(b.build(), "manifest.*repository")

    def test_closure_cache_not_listed(self):
        b = self.bundle()
        sd = str(self.w.store_dir)
        b.closure = {"store-dir": sd, "cache": "nix", "paths": [f"{sd}/{'0' * 32}-nixos-system-testhost-world"]}
        self.assert_refused(b.build(), "manifest: closure.*'nix'")

    def test_listed_manifest_sig(self):
        b = self.bundle()
        b.extra_listed["manifest.sig"] = b""
        self.assert_refused(b.build(), "manifest.*'manifest.sig' is reserved")

    def test_listed_twice(self):
        b = self.bundle()
        m = b.manifest()
        m["members"].append(dict(m["members"][0]))
        self.assert_refused(self.signed(b, bw.manifest_json(m)), "listed twice")

    def test_listed_invalid_name(self):
        b = self.bundle()
        b.extra_listed["../escape"] = b""
        self.assert_refused(b.build(), "invalid member name")

    def test_manifest_larger_than_4_mib(self):
        b = self.bundle()
        m = b.manifest_bytes()
        m = m[:-1] + b" " * (bw.MANIFEST_MAX + 1 - len(m)) + b"}"
        self.assertEqual(len(m), bw.MANIFEST_MAX + 1)
        self.assert_refused(self.signed(b, m), "'manifest.json' is larger than 4194304 bytes")

    def test_signature_larger_than_1_kib(self):
        b = self.bundle()
        m = b.manifest_bytes()
        sig = self.m.key.sign(m) + b"\0" * 1024
        self.assert_refused(b.build(manifest=m, signature=sig), "'manifest.sig' is larger than 1024 bytes")

    def test_bad_json(self):
        b = self.bundle()
        self.assert_refused(self.signed(b, b.manifest_bytes()[:-2]), "manifest: not valid JSON")

    def test_duplicate_json_key(self):
        b = self.bundle()
        m = b.manifest_bytes()
        m = m[:-1] + b',"sequence":1000}'
        self.assert_refused(self.signed(b, m), "manifest: not valid JSON.*duplicate")

    def test_byte_order_mark(self):
        b = self.bundle()
        self.assert_refused(self.signed(b, b"\xef\xbb\xbf" + b.manifest_bytes()), "manifest: not valid JSON")

    def test_data_after_the_json_object(self):
        b = self.bundle()
        self.assert_refused(self.signed(b, b.manifest_bytes() + b'{"sequence":1}'), "manifest: not valid JSON")

    def test_nul_in_a_string(self):
        b = self.bundle()
        m = b.manifest_bytes().replace(b'"host":"testhost"', b'"host":"testhost\\u0000evil"')
        self.assert_refused(self.signed(b, m), "manifest: not valid JSON|host")

    def test_invalid_utf8(self):
        b = self.bundle()
        m = b.manifest_bytes().replace(b'"host":"testhost"', b'"host":"testhost\xff"')
        self.assert_refused(self.signed(b, m), "manifest: not valid JSON")

    def test_not_an_object(self):
        b = self.bundle()
        self.assert_refused(self.signed(b, b"[" + b.manifest_bytes() + b"]"), "manifest: not a JSON object")

    def test_deeply_nested_json(self):
        b = self.bundle()
        m = b.manifest_bytes()[:-1] + b',"x":' + b"[" * 100000 + b"]" * 100000 + b"}"
        self.assert_refused(self.signed(b, m), "manifest: not valid JSON")

    # -- the signature (section 4) --------------------------------------------------------

    def test_signed_by_an_unlisted_key(self):
        b = self.bundle(key=self.m.other)
        self.assert_refused(b.build(), "signature of the manifest does not verify")

    def test_manifest_changed_after_signing(self):
        b = self.bundle(sequence=100)
        m = b.manifest_bytes()
        sig = self.m.key.sign(m)
        m2 = m.replace(b'"sequence":100', b'"sequence":900')
        self.assertNotEqual(m, m2)
        self.assert_refused(b.build(manifest=m2, signature=sig), "signature of the manifest does not verify")

    def test_one_byte_of_the_manifest_changed(self):
        b = self.bundle()
        m = b.manifest_bytes()
        sig = self.m.key.sign(m)
        m2 = bytearray(m)
        m2[len(m2) // 2] ^= 0x01
        self.assert_refused(b.build(manifest=bytes(m2), signature=sig), "signature of the manifest does not verify")

    def test_empty_signature(self):
        b = self.bundle()
        self.assert_refused(b.build(signature=b""), "signature of the manifest does not verify")

    def test_signature_of_another_manifest(self):
        b = self.bundle(sequence=100)
        other = self.bundle(sequence=101)
        sig = self.m.key.sign(other.manifest_bytes())
        self.assert_refused(b.build(signature=sig), "signature of the manifest does not verify")

    def test_signature_with_trailing_byte(self):
        b = self.bundle()
        m = b.manifest_bytes()
        self.assert_refused(b.build(manifest=m, signature=self.m.key.sign(m) + b"\0"),
                            "signature of the manifest does not verify")

    def test_signature_truncated(self):
        b = self.bundle()
        m = b.manifest_bytes()
        self.assert_refused(b.build(manifest=m, signature=self.m.key.sign(m)[:-1]),
                            "signature of the manifest does not verify")

    def test_signature_over_sha512(self):
        b = self.bundle()
        m = b.manifest_bytes()
        self.assert_refused(b.build(manifest=m, signature=self.m.key.sign(m, digest="sha512")),
                            "signature of the manifest does not verify")

    def test_signed_by_an_rsa_key(self):
        rsa = Key.generate(self.w.tmp / "keys", "rsa-" + self.token, "rsa")
        b = self.bundle(key=rsa)
        self.assert_refused(b.build(), "signature of the manifest does not verify")

    def test_ed25519_signature_over_the_digest(self):
        ed = Key.generate(self.w.tmp / "keys", "ed-" + self.token, "ed25519")
        configure(self.w, [self.m.key.public, ed.public])
        try:
            b = self.bundle(key=ed)
            m = b.manifest_bytes()
            # Signs SHA-256(manifest), not the manifest: not what section 4 specifies.
            sig = ed.sign(hashlib.sha256(m).digest())
            self.assert_refused(b.build(manifest=m, signature=sig), "signature of the manifest does not verify")
        finally:
            configure(self.w, [self.m.key.public])

    def test_ed25519_non_canonical_signature(self):
        # S + L verifies with a lax implementation (the same point); RFC 8032 requires S < L.
        ed = Key.generate(self.w.tmp / "keys", "ed-" + self.token, "ed25519")
        configure(self.w, [self.m.key.public, ed.public])
        try:
            b = self.bundle(key=ed)
            m = b.manifest_bytes()
            sig = ed.sign(m)
            L = 2 ** 252 + 27742317777372353535851937790883648493
            s = int.from_bytes(sig[32:], "little") + L
            if s >= 2 ** 256:
                self.skipTest("S + L does not fit in 32 bytes for this signature")
            bad = sig[:32] + s.to_bytes(32, "little")
            self.assert_refused(b.build(manifest=m, signature=bad), "signature of the manifest does not verify")
        finally:
            configure(self.w, [self.m.key.public])

    def test_ecdsa_signature_for_an_ed25519_key(self):
        # The ECDSA key is not trusted here, only the Ed25519 one.
        ed = Key.generate(self.w.tmp / "keys", "ed-" + self.token, "ed25519")
        configure(self.w, [ed.public])
        try:
            self.assert_refused(self.bundle().build(), "signature of the manifest does not verify")
        finally:
            configure(self.w, [self.m.key.public])

    def test_refused_before_any_member_is_read(self):
        # A bad signature wins over everything behind it: an escaping member is never looked at.
        b = self.bundle(key=self.m.other)
        e = b.entries() + [Entry(f"../../{self.token}", b"escape\n"), Entry("link", type=b"2", linkname="/")]
        self.assert_refused(b.build(entries=e), "signature of the manifest does not verify")

    def test_rsa_key_in_bundle_keys_is_a_configuration_error(self):
        rsa = Key.generate(self.w.tmp / "keys", "rsa-" + self.token, "rsa")
        configure(self.w, [self.m.key.public, rsa.public])
        try:
            path = self.m.out / "rsa.bundle"
            self.bundle(key=rsa).write(path)
            state = self.state_bytes()
            for cmd in ("verify", "apply"):
                r = self.w.agent(cmd, str(path))
                self.assertEqual(r.returncode, 2, f"{cmd}:\n{r.stderr}")
                self.assertRegex(r.stderr, "bundle.keys.*rsa|bundle.keys.*RSA")
            self.assertEqual(self.state_bytes(), state)
        finally:
            configure(self.w, [self.m.key.public])


class ValidBundleTest(unittest.TestCase):
    """Valid bundles of this writer: the agent accepts what the specification allows."""

    def setUp(self):
        self.w = World.for_test(self)
        self.repo = self.w.make_repo()
        self.r1 = self.w.commit()
        keys = self.w.tmp / "keys"
        self.key = Key.generate(keys, "bundle")
        self.ed = Key.generate(keys, "ed", "ed25519")
        self.out = self.w.tmp / "bundles"
        self.out.mkdir()
        configure(self.w, [self.key.public, self.ed.public])

    def bundle(self, rev=None, **kw) -> Bundle:
        kw.setdefault("key", self.key)
        kw.setdefault("sequence", 20)
        kw.setdefault("system", bw.build_system(self.w.run, self.w.deploy_ref(rev or self.r1), HOST))
        b = Bundle(HOST, rev or self.r1, **kw)
        return b.add_pack(self.repo.work)

    def run_agent(self, *args, expect):
        r = self.w.agent(*args)
        self.assertEqual(r.returncode, expect, f"{args}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def verify(self, data: bytes, *args, name="b.tar") -> dict:
        """verify --json accepts the bundle; returns what it printed."""
        path = self.out / name
        path.write_bytes(data)
        r = self.w.agent("--json", "verify", str(path), *args)
        self.assertEqual(r.returncode, 0, f"verify refused a valid bundle:\n{r.stderr}")
        self.assertFalse((self.w.state_dir / "staging").exists())
        return json.loads(r.stdout)

    def status(self):
        return json.loads(self.run_agent("status", "--json", expect=0).stdout)

    # -- verify ------------------------------------------------------------------------------

    def test_ecdsa(self):
        b = self.bundle(sequence=33)
        data = b.build()
        m = bw.read_members(data)[0][1]
        info = self.verify(data)
        self.assertEqual(info["id"], hashlib.sha256(m).hexdigest())
        self.assertEqual(info["signer"], self.key.fingerprint())
        self.assertEqual((info["host"], info["revision"], info["sequence"]), (HOST, self.r1, 33))
        self.assertEqual(info["members"], 1)
        self.assertEqual(info["closure"], False)
        self.assertIsNone(info["images"])

    def test_ed25519(self):
        b = self.bundle(key=self.ed)
        data = b.build()
        self.assertEqual(len(bw.read_members(data)[1][1]), 64)
        info = self.verify(data)
        self.assertEqual(info["signer"], self.ed.fingerprint())

    def test_compressed(self):
        magic = {"gzip": b"\x1f\x8b", "xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd"}
        for how, key in [(h, k) for h in magic for k in (self.key, self.ed)]:
            with self.subTest(compression=how, key=key.algorithm):
                data = self.bundle(key=key).build(compression=how)
                self.assertEqual(data[:len(magic[how])], magic[how])
                self.verify(data, name="b.tar." + how)

    def test_python_tarfile_writer(self):
        # The same members written by Python's tarfile, pax and ustar, instead of our headers.
        import tarfile
        b = self.bundle()
        b.add("nix/" + "n" * 60 + "/" + "m" * 80, b"a name longer than a ustar name field\n")
        m = b.manifest_bytes()
        members = [("manifest.json", m), ("manifest.sig", self.key.sign(m))] + list(b.members.items())
        for fmt in (tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
            with self.subTest(format=fmt):
                self.verify(bw.write_tar_tarfile(members, fmt))

    def test_member_order_is_free(self):
        b = self.bundle()
        for i in range(12):
            b.add(f"d{i % 3}/f{i}", f"member {i}\n".encode())
        e = b.entries()
        head, rest = e[:2], e[2:]
        random.Random(3).shuffle(rest)
        self.verify(b.build(entries=head + rest))

    def test_every_legal_name(self):
        b = self.bundle()
        b.add("A-Z.a_z+0=9@-x", b"every character of the alphabet\n")
        b.add("/".join(["c"] * 32), b"32 components\n")
        b.add("x/" + "y" * 255, b"a component of 255\n")
        long = "/".join(["z" * 254] * 4) + "/" + "w" * 3   # 4 * 255 + 3 = 1023 ... + 1
        long = long + "w" * (1024 - len(long))
        self.assertEqual(len(long), 1024)
        b.add(long, b"a name of 1024 bytes\n")
        b.add("empty", b"")
        b.add("a..b/c.d", b"dots not at the start of a component\n")
        self.verify(b.build())

    def test_ustar_prefix_field(self):
        b = self.bundle()
        name = "p" * 120 + "/" + "q" * 90
        data = b"named by prefix and name\n"
        b.add(name, data)
        e = b.entries()
        raw = ustar_header("q" * 90, prefix="p" * 120, size=len(data)) + data + b"\0" * (-len(data) % 512)
        e[-1] = Entry(b"", raw=raw)
        self.verify(b.build(entries=e))

    def test_typeflag_nul(self):
        b = self.bundle()
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data, type=b"\0")
        self.verify(b.build(entries=e))

    def test_ignored_pax_keywords(self):
        b = self.bundle()
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data, pax={
            "mtime": "1700000000.123456789", "atime": "1700000001", "ctime": "1700000002", "uid": "4242",
            "gid": "4242", "uname": "someone", "gname": "somegroup", "ATTICD.comment": "a vendor keyword"})
        self.verify(b.build(entries=e))

    def test_pax_size_replaces_the_header_size(self):
        b = self.bundle()
        e = b.entries()
        e[2] = Entry(e[2].name, e[2].data, header_size=0, pax_size=len(e[2].data))
        self.verify(b.build(entries=e))

    def test_trailing_data_after_the_archive(self):
        self.verify(self.bundle().build(trailing=random.Random(5).randbytes(3000)))

    def test_images_empty_and_a_layout(self):
        b = self.bundle()
        b.images = []
        self.assertEqual(self.verify(b.build())["images"], [])
        b.add("images/0/oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        b.add("images/0/index.json", b'{"schemaVersion":2,"manifests":[]}')
        b.images = [{"reference": "registry.example:5000/app/web:1.4", "digest": "sha256:" + "b" * 64,
                     "layout": "images/0"}]
        info = self.verify(b.build())
        self.assertEqual(info["images"], [{"reference": "registry.example:5000/app/web:1.4",
                                           "digest": "sha256:" + "b" * 64}])

    def test_allow_downgrade(self):
        self.run_agent("apply", str(self.bundle(sequence=10).write(self.out / "b10.tar")), expect=0)
        r2 = self.w.commit()
        low = self.bundle(r2, sequence=5).write(self.out / "b5.tar")
        r = self.run_agent("verify", str(low), expect=3)
        self.assertIn("sequence 5 is not above 10", r.stderr)
        self.run_agent("verify", str(low), "--allow-downgrade", expect=0)
        self.run_agent("apply", str(low), "--allow-downgrade", expect=0)
        self.assertEqual(self.status()["revision"], r2)
        self.assertEqual(json.loads((self.w.state_dir / "state.json").read_text())["bundle-sequence"], 10)

    # -- apply -------------------------------------------------------------------------------

    def assert_deployed(self, rev, b: Bundle, key: Key, toplevel=None):
        w = self.w
        current = w.current_system()
        self.assertIsNotNone(current)
        self.assertEqual(w.marker_of(current), marker(w, rev))
        if toplevel:
            self.assertEqual(current, toplevel)
        self.assertEqual(w.profile_target(), current)
        self.assertEqual(w.health(), 200)
        s = self.status()
        self.assertEqual(s["revision"], rev)
        self.assertEqual(s["generation"], current)
        h = s["history"][-1]
        self.assertEqual((h["source"], h["result"], h["revision"], h["generation"]),
                         ("bundle", "success", rev, current))
        self.assertEqual(h["bundle"]["sequence"], b.sequence)
        self.assertEqual(h["bundle"]["id"], hashlib.sha256(b.manifest_bytes()).hexdigest())
        self.assertEqual(h["bundle"]["signer"], key.fingerprint())
        self.assertEqual(list((w.state_dir / "staging").iterdir()), [])

    def test_apply_builds_without_a_closure(self):
        w = self.w
        b = self.bundle(sequence=11)
        path = b.write(self.out / "b.tar")
        self.assertIsNone(w.current_system())
        self.run_agent("apply", str(path), expect=0)
        self.assert_deployed(self.r1, b, self.key)
        # The next revision, Ed25519, xz: a fast-forward of the deployed one.
        r2 = w.commit()
        b2 = self.bundle(r2, key=self.ed, sequence=12)
        self.run_agent("apply", str(b2.write(self.out / "b2.tar.xz", compression="xz")), expect=0)
        self.assert_deployed(r2, b2, self.ed)
        self.assertEqual([h["source"] for h in self.status()["history"]], ["bundle", "bundle"])

    def test_apply_with_a_closure_onto_a_fresh_machine(self):
        # The connected side: build the toplevel, archive the flake's sources, and write a
        # binary cache (section 5.2) with nix copy; then a wiped machine imports it.
        w = self.w
        flake = w.deploy_ref(self.r1)
        attr = f"{flake}#nixosConfigurations.{HOST}.config.system.build.toplevel"
        r = w.run(["nix", "build", "--no-link", "--json", attr], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        toplevel = json.loads(r.stdout)[0]["outputs"]["out"]
        r = w.run(["nix", "flake", "archive", "--json", flake], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        archive = json.loads(r.stdout)
        sources = [archive["path"]]
        stack = [archive.get("inputs", {})]
        while stack:
            for inp in stack.pop().values():
                sources.append(inp["path"])
                stack.append(inp.get("inputs", {}))
        cache = w.tmp / "cache-out"
        r = w.run(["nix", "copy", "--to", f"file://{cache}?compression=none", toplevel, *sources], timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)

        b = self.bundle(sequence=40)
        b.closure = {"store-dir": str(w.store_dir), "cache": "nix", "paths": [toplevel, *sources]}
        b.add_tree("nix", cache)
        self.assertIn("nix/nix-cache-info", b.members)
        path = b.write(self.out / "closure.tar.zst", compression="zstd")

        w.wipe_machine()
        configure(w, [self.key.public])
        self.assertFalse(Path(toplevel).exists())
        self.verify(path.read_bytes(), name="closure-copy.tar.zst")
        r = self.run_agent("apply", str(path), expect=0)
        self.assertIn("Importing the closure", r.stderr)
        self.assert_deployed(self.r1, b, self.key, toplevel=toplevel)
        # Imported, not built here: nix marks what it built itself "ultimate".
        info = json.loads(w.run(["nix", "path-info", "--json", toplevel], check=True).stdout)
        self.assertNotIn("ultimate", info[0])


if __name__ == "__main__":
    unittest.main()
