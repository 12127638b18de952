sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
MEQCIH34xY!v5UpicMrafdPEgwnKv7/bTnUR7BqQg1cvhK3NAiBwFiMa88EYnB/IrLaWUkamcyv12Cml+Fverwxfp94C7Q==
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image signature"},"optional":null}