sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
WSQxb/iFtJYtoRDZZ1sHSLcEny7rEuA/NR2DA8zJu3AJCkiC4NeyYQCAgGzTyshhRiQKad5+x6QuwjsxJIVIAQ==
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image signature"},"optional":null}