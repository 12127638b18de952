sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268
MGUCMDhPDLrnJJ1yRmNEgQzfWPbwIEbOLz0OGKwNG+DJBgsHt8ZgxGhnhwgd9STi0ik+3AIxAOaojzzKLGJI9DngTeejRX5dJd6OPwNuQRTyNc+Vja7R6oNbF0vASdpJJHctTFPDYA==
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268"},"type":"cosign container image signature"},"optional":null}