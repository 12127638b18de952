sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
MEUCIFo8sYEluJaNxTX8twt5Yf30ReZI87CVCTVCnyPGdKxAAiEA/GJVdaezNWSpiQCVerTGmoRc9EaseB8+Nglz8UuN6RM=
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image attestation"},"optional":null}