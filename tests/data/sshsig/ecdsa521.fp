521 SHA256:p4pJAo/g+9d667kYfTGPUFfbLZTVGpinnuCcfZ58np0 p521@example.com (ECDSA)
