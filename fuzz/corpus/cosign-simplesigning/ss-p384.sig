sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
MGUCMFX6M0ak0VUDMTrcNOqEl6on8gMFmUgppnCvum7w15PHhKiAKuHR7wz99zOSPE97WwIxAMnJ5qCZ9DNd+y+7WZcUMkQygoQNgJRpF2nSTOyg9OQt8ORh61up4gBtBGGH2ae/GQ==
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image signature"},"optional":null}