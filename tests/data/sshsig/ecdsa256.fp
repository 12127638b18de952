256 SHA256:zQgi1Qt/vf+DqHFyzaqhEt7jbWX1XtjFUxz64Dmh7UQ p256@example.com (ECDSA)
