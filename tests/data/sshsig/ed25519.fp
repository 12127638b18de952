256 SHA256:WZc/JVhtJyGip+wexTnTyDSod5mZ2rxruqhrAmCr7TM alice@example.com (ED25519)
