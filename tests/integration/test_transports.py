#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`pull` over every transport against real servers on loopback: git daemon, smart HTTP with
basic auth, HTTPS with a private CA, OpenSSH; and the failures an operator meets: wrong
password, untrusted certificate or host key, server down, a server that never answers,
DNS failure. A transient failure is exit 6, a verification failure exit 3; both change
nothing."""

import json
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world import World  # noqa: E402
from servers import GitDaemon, GitHttpServer, HttpProxy, SshServer, make_tls_ca  # noqa: E402


class TransportTest(unittest.TestCase):
    def setUp(self):
        self.w = World.for_test(self)
        self.repo = self.w.make_repo()
        self.logs = self.w.tmp / "logs"
        self.logs.mkdir()
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()

    def serve(self, server):
        self.servers.append(server)
        return server

    def pull(self, expect, **repository):
        w = self.w
        w.write_config(repository=repository)
        r = w.agent("pull")
        self.assertEqual(r.returncode, expect, f"stderr:\n{r.stderr}")
        return r

    def deployed(self):
        return json.loads(self.w.agent("status", "--json").stdout)["revision"]

    def assert_unchanged_after(self, expect, needle, **repository):
        w = self.w
        p = w.state_dir / "state.json"
        before = p.read_bytes() if p.exists() else None
        w.reset_call_logs()
        start = time.monotonic()
        r = self.pull(expect, **repository)
        self.assertIn(needle, r.stderr)
        self.assertEqual(p.read_bytes() if p.exists() else None, before)
        self.assertEqual(w.system_builds(), [])
        return time.monotonic() - start

    def test_git_daemon(self):
        d = self.serve(GitDaemon(self.w.tmp / "repos", self.logs))
        rev = self.w.commit()
        self.pull(0, url=d.url("client.git"))
        self.assertEqual(self.deployed(), rev)
        self.w.reset_call_logs()
        self.pull(0, url=d.url("client.git"))
        self.assertEqual(self.w.system_builds(), [])
        rev2 = self.w.commit()
        self.pull(0, url=d.url("client.git"))
        self.assertEqual(self.deployed(), rev2)

    def password_file(self, text):
        p = self.w.tmp / "git-password"
        p.write_text(text + "\n")
        p.chmod(0o600)
        return str(p)

    def test_http_basic_auth(self):
        h = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, user="fleet", password="s3cret"))
        rev = self.w.commit()
        url = h.url("client.git")
        self.pull(0, url=url, **{"http-username": "fleet", "http-password-file": self.password_file("s3cret")})
        self.assertEqual(self.deployed(), rev)
        self.assertTrue(any(" 200" in line for line in h.requests()))

        self.w.commit()
        self.assert_unchanged_after(6, "credentials", url=url, **{
            "http-username": "fleet", "http-password-file": self.password_file("wrong")})
        self.assertTrue(any(line.endswith(" 401") for line in h.requests()))
        self.assert_unchanged_after(6, "credentials", url=url)
        self.assertEqual(self.deployed(), rev)

    def test_credentials_stay_with_the_configured_host(self):
        """A forge that redirects to another host (127.0.0.2, which logs what it receives):
        the pull token of repository.url never reaches it, and the error says where the fetch
        was sent."""
        other = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, bind="127.0.0.2"))
        forge = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, user="fleet", password="t0ken-s3cret",
                                         mode="redirect", redirect_to=f"http://127.0.0.2:{other.port}"))
        self.w.commit()
        creds = {"http-username": "fleet", "http-password-file": self.password_file("t0ken-s3cret")}
        self.assert_unchanged_after(6, "127.0.0.2", url=forge.url("client.git"), **creds)
        self.assertTrue(any(e["status"] == 302 and e["authorization"] for e in forge.request_entries()),
                        "the forge never got (and redirected) an authenticated request")
        got = [e["authorization"] for e in other.request_entries() if e["authorization"]]
        self.assertEqual(got, [], "the credentials went to another host")

        # Without credentials the redirect is followed (libgit2's default: the first request).
        open_forge = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, mode="redirect",
                                              redirect_to=f"http://127.0.0.2:{other.port}"))
        self.pull(0, url=open_forge.url("client.git"))
        self.assertTrue(any(e["status"] == 200 for e in other.request_entries()))

    def proxy_env(self, proxy_url, no_proxy=""):
        return {"http_proxy": proxy_url, "https_proxy": proxy_url, "no_proxy": no_proxy, "NO_PROXY": no_proxy}

    def test_https_through_a_proxy(self):
        """https_proxy is honoured for https:// remotes (a CONNECT tunnel through the proxy);
        no_proxy bypasses it."""
        w = self.w
        proxy = self.serve(HttpProxy(self.logs))
        ca, cert, key = make_tls_ca(w.tmp / "tls")
        h = self.serve(GitHttpServer(w.tmp / "repos", self.logs, tls=(cert, key)))
        url = h.url("client.git").replace("127.0.0.1", "localhost")
        w.write_config(repository={"url": url, "ca-file": str(ca)})
        rev = w.commit()
        r = w.agent("pull", env=self.proxy_env(proxy.url()))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.deployed(), rev)
        self.assertIn(f"CONNECT localhost:{h.port} 200", proxy.requests())

        before = len(proxy.requests())
        rev = w.commit()
        r = w.agent("pull", env=self.proxy_env(proxy.url(), no_proxy="localhost"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.deployed(), rev)
        self.assertEqual(len(proxy.requests()), before, "no_proxy lists the host, yet the proxy was asked")

    def test_plain_http_remote_does_not_use_the_proxy(self):
        """libgit2 (1.5; its issue #5650) sends the requests for a plain http:// remote to the
        remote itself, in the form meant for a proxy: the agent says so in a warning, and the
        fetch works where the remote can be reached directly."""
        w = self.w
        proxy = self.serve(HttpProxy(self.logs))
        h = self.serve(GitHttpServer(w.tmp / "repos", self.logs))
        w.write_config(repository={"url": h.url("client.git")})
        rev = w.commit()
        r = w.agent("pull", env=self.proxy_env(proxy.url()))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.deployed(), rev)
        self.assertIn("libgit2 fetches plain http:// remotes without a proxy", r.stderr)
        self.assertEqual(proxy.requests(), [])
        self.assertTrue(h.request_entries() and all(e["absolute_form"] for e in h.request_entries()))

        # without http_proxy: no warning
        rev = w.commit()
        r = w.agent("pull")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("without a proxy", r.stderr)

    def test_proxy_credentials_and_refusals(self):
        """A proxy that wants credentials: those in its URL are used. Without them, with wrong
        ones, or with the proxy down: exit 6 with the reason, nothing changed, and the remote
        never asked around the proxy."""
        w = self.w
        proxy = self.serve(HttpProxy(self.logs, user="corp", password="pw"))
        ca, cert, key = make_tls_ca(w.tmp / "tls")
        h = self.serve(GitHttpServer(w.tmp / "repos", self.logs, tls=(cert, key)))
        url = h.url("client.git").replace("127.0.0.1", "localhost")
        w.write_config(repository={"url": url, "ca-file": str(ca)})
        w.commit()
        p = w.state_dir / "state.json"
        for proxy_url, needle in ((proxy.url(), "the proxy refused to go on without credentials (HTTP 407)"),
                                  (proxy.url(user="corp", password="wrong"),
                                   "the proxy refused the credentials in its URL (HTTP 407)"),
                                  ("http://127.0.0.1:9", "unreachable")):
            with self.subTest(proxy=proxy_url):
                before = p.read_bytes() if p.exists() else None
                r = w.agent("pull", env=self.proxy_env(proxy_url))
                self.assertEqual(r.returncode, 6, r.stderr)
                self.assertIn(needle, r.stderr)
                self.assertEqual(p.read_bytes() if p.exists() else None, before)
        self.assertEqual(h.requests(), [], "the remote was asked around the proxy")

        rev = w.commit()
        r = w.agent("pull", env=self.proxy_env(proxy.url(user="corp", password="pw")))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.deployed(), rev)
        self.assertEqual(proxy.requests()[-1], f"CONNECT localhost:{h.port} 200")

    def test_https_private_ca(self):
        ca, cert, key = make_tls_ca(self.w.tmp / "tls")
        h = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, tls=(cert, key)))
        rev = self.w.commit()
        # mbedTLS (libgit2's TLS on Debian) matches host names, not IP addresses, against
        # the certificate: use the name.
        url = h.url("client.git").replace("127.0.0.1", "localhost")
        self.assert_unchanged_after(3, "certificate", url=url)
        self.pull(0, url=url, **{"ca-file": str(ca)})
        self.assertEqual(self.deployed(), rev)

    def test_ssh(self):
        w = self.w
        key = w.tmp / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = w.tmp / "authorized_keys"
        authorized.write_text(Path(str(key) + ".pub").read_text())
        s = self.serve(SshServer(self.logs, authorized))
        known = w.tmp / "known_hosts"
        known.write_text(s.known_hosts_line())
        rev = w.commit()
        url = s.url(str(self.repo.bare))
        opts = {"ssh-key": str(key), "ssh-known-hosts": str(known)}
        self.pull(0, url=url, **opts)
        self.assertEqual(self.deployed(), rev)

        # the same server by git's scp-like form with a port: [user@host:port]:path
        rev = w.commit()
        self.pull(0, url=s.scp_url(str(self.repo.bare)), **opts)
        self.assertEqual(self.deployed(), rev)
        # a hashed known_hosts entry works too
        known.write_text(s.known_hosts_line(hashed=True))
        rev = w.commit()
        self.pull(0, url=url, **opts)
        self.assertEqual(self.deployed(), rev)

        # a server that shows another host key: refused, nothing changed
        w.commit()
        other = w.tmp / "other_host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
        parts = Path(str(other) + ".pub").read_text().split()
        known.write_text(f"[127.0.0.1]:{s.port} {parts[0]} {parts[1]}\n")
        self.assert_unchanged_after(3, "does NOT match", url=url, **opts)
        # a server that is not listed at all
        known.write_text("")
        self.assert_unchanged_after(3, "is not in", url=url, **opts)
        self.assertEqual(self.deployed(), rev)

    def test_ssh_url_needs_known_hosts(self):
        r = self.w.agent("config", "check", str(self.w.write_config(repository={"url": "git@example.org:client.git"})))
        self.assertEqual(r.returncode, 2)
        self.assertIn("ssh-known-hosts is required", r.stderr)

    def test_server_down(self):
        d = GitDaemon(self.w.tmp / "repos", self.logs)
        url = d.url("client.git")
        d.stop()
        self.w.commit()
        self.assert_unchanged_after(6, "unreachable", url=url)

    def test_server_never_answers(self):
        h = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, mode="stall"))
        self.w.commit()
        took = self.assert_unchanged_after(6, "no answer within 2 s", url=h.url("client.git"),
                                           **{"connect-timeout": 2})
        self.assertLess(took, 10)

    def test_server_error(self):
        h = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, mode="500"))
        self.w.commit()
        self.assert_unchanged_after(6, "unreachable", url=h.url("client.git"))

    def test_transfer_cut_mid_stream(self):
        h = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, mode="close-body"))
        self.w.commit()
        self.assert_unchanged_after(6, "unreachable", url=h.url("client.git"))

    def test_garbage_advertisement(self):
        h = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, mode="garbage-refs"))
        self.w.commit()
        self.assert_unchanged_after(6, "unreachable", url=h.url("client.git"))

    def test_endless_pack_is_cut_at_the_cap(self):
        h = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, mode="endless-post"))
        self.w.commit()
        took = self.assert_unchanged_after(3, "sent more than 2097152 bytes", url=h.url("client.git"),
                                           **{"max-fetch-mib": 2})
        self.assertLess(took, 30)
        # The half-received pack is not left in the mirror.
        packs = list((self.w.state_dir / "repo.git" / "objects" / "pack").glob("*.pack"))
        self.assertEqual([p for p in packs if p.stat().st_size > 1024 * 1024], [])

    def test_slow_drip_is_cut_at_the_fetch_timeout(self):
        # One byte every 20 ms never stalls (stall-timeout 2 s), but never finishes in time either.
        h = self.serve(GitHttpServer(self.w.tmp / "repos", self.logs, mode="slow-post", slow_delay=0.02))
        self.w.commit()
        took = self.assert_unchanged_after(6, "did not finish within 3 s", url=h.url("client.git"),
                                           **{"fetch-timeout": 3, "stall-timeout": 2})
        self.assertLess(took, 10)

    def test_dns_failure(self):
        self.w.commit()
        self.assert_unchanged_after(6, "unreachable", url="https://no-such-host.invalid/client.git")


if __name__ == "__main__":
    unittest.main()
