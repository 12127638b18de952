sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
MEUCIDQHOCEbNa1a3mKuLndOpGteSsqbfxL/7s/z4ZaXjccxAiEArjL46S09qb06nPkMVyNsdacYu2ihE02A8wg+hC4mWks=
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image signature"},"optional":null}