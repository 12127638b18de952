1024 SHA256:FOR6dk0vUd1DmhbZUudGxXzUcu0EVoGcCMizQwVK+zw rsa1024@example.com (RSA)
