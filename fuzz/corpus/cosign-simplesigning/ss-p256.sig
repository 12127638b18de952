sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
MEYCIQDyTjZFGIpbzJyEkmQ1lShZBcEq9kLQlpkM/5IQatRZ7QIhAJBjD/yjDZUrcJ/Qbkz+rQSEl9j22dFcm4nd1NiVeLp+
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image signature"},"optional":null}