sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
MIGGAkFCGIdnlmUKosQg/UFctUqf63JTnLp7HNonZztLdxmkOGhwr59U2hrOsOlWoCGRvQe8rxiTF9rTxzRN69O62bx53gJBfMzTKMN5gLfx6oPgAoLj3oUasrS5HZpWDa0VaHzzKUBg/ysY9a/NDxjTnUYUqXtH63LsHFVU4qB7A4A9TQN/caw=
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image signature"},"optional":null}