sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
MIGIAkIB4aWRVI9zK2Sw/Bq1seyql1RTDVST1SLdpk2XhQeERpDYnGhytfAJN4x9dQANARFxQpT26x+Z1lGPC3IFiR+hCmECQgHUHbsLISNgjft8MT23rT8WxExkGWqVL7mLdxmjG4CiXgnHIGKcD8yjVGvR5yCJaE7ibM5ezTE7h+nkcj89NVx3bQ==
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image signature"},"optional":null}