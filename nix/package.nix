# SPDX-License-Identifier: MIT
# atticd-agent, built with meson; the unit tests run in the build (doCheck).
{
  lib,
  stdenv,
  meson,
  ninja,
  pkg-config,
  scdoc,
  python3,
  libgit2,
  curl,
  systemd,
  libyaml,
  openssl,
  jansson,
  libarchive,
  libssh2,
  cmocka,
}:

stdenv.mkDerivation {
  pname = "atticd-agent";
  version = "0.1.0";

  # The sources meson reads, and nothing else: no build directories, no flake, no docs other
  # than the man page, so that editing those does not rebuild the package. (cleanSourceWith
  # rather than lib.fileset, which needs nix 2.14: tests/nix evaluates this with older ones.)
  src =
    let
      root = toString ../.;
      wanted = [
        "meson.build"
        "meson_options.txt"
        "agent"
        "catalog"
        "tests/meson.build"
        "tests/data"
        "docs/atticd-agent.8.scd"
      ];
      keep =
        path: type:
        let
          rel = lib.removePrefix (root + "/") (toString path);
        in
        lib.any (w: rel == w || lib.hasPrefix (w + "/") rel) wanted
        # the directories that lead to them
        || (type == "directory" && lib.any (w: lib.hasPrefix (rel + "/") w) wanted)
        # the unit tests: tests/<folder>/test-*.c, as agent/ (and any helpers beside them)
        || builtins.match "tests/(basic|config|system|git|sign|oci|bundle|engine)(/[^/]*[.][ch])?" rel != null;
    in
    lib.cleanSourceWith {
      name = "source";
      src = ../.;
      filter = keep;
    };

  nativeBuildInputs = [
    meson
    ninja
    pkg-config
    scdoc # the man page, atticd-agent(8)
    python3 # tests/meson.build looks for it (the integration and nix tests)
  ];

  buildInputs = [
    libgit2
    curl
    systemd # libsystemd: sd-bus, sd-journal, sd-daemon
    libyaml
    openssl
    jansson
    libarchive
    libssh2
    cmocka # tests/meson.build links the unit tests with it
  ];

  # The integration tests need real git and nix servers, a registry and systemd: not in the
  # build sandbox. They run in CI (tools/test) and in the NixOS VM test (nix/tests/vm.nix).
  # libcurl and libarchive are dlopened when first needed (agent/basic/dl.c), so they are not in the
  # binary's NEEDED entries nor its RUNPATH: give the loader the libraries' store paths.
  mesonFlags = [
    (lib.mesonBool "integration-tests" false)
    (lib.mesonOption "libcurl" "${lib.getLib curl}/lib/libcurl.so.4")
    (lib.mesonOption "libarchive" "${lib.getLib libarchive}/lib/libarchive.so.13")
  ];

  doCheck = true;

  # The unit tests. tests/sign/test-cosign.c reads real cosign output from ../shared/vectors,
  # outside this source tree, and so do the Sigstore primitives' tests (tlog, rfc3161, sct: the
  # conformance vectors), so they cannot run here; every other unit test does.
  checkPhase = ''
    runHook preCheck
    tests=$(meson test --list --suite unit 2>/dev/null | sed -n 's|^atticd-agent:unit / ||p' | grep -vx cosign | grep -vxE 'tlog|rfc3161|sct')
    meson test --suite unit --print-errorlogs --num-processes "$NIX_BUILD_CORES" $tests
    runHook postCheck
  '';

  meta = {
    description = "Update agent for NixOS machines: deploys a client's flake from git or signed offline bundles, verifies, checks health, rolls back";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "atticd-agent";
  };
}
