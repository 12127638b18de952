256 SHA256:TO3JtmgceoT3px8XHNGp2WDMh5eSTs81Wx3vyuLSll0 stranger@example.com (ED25519)
