sha256:210277cb6266afe7c6cc4227ff3e9efc818f55234a7d7fbf033ab602440f2437
MEUCIQCk8lvsBaCbyXMElXdjYomhsGYFYDS7pyFFBUJnnEQ23AIgbdPrswdjqxblrD26G+yaSjy4zxEQPen495BXoCGVi5o=
--8<--
{"critical":{"identity":{"docker-reference":"registry.example:5000/nixos/host"},"image":{"docker-manifest-digest":"sha256:210277cb6266afe7c6cc4227ff3e9efc818f55234a7d7fbf033ab602440f2437"},"type":"cosign container image signature"},"optional":null}