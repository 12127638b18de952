2048 SHA256:LeM0tX179IcHMmjP0nicJnL266OwO6Yn5wA3r5aiMak rsa@example.com (RSA)
