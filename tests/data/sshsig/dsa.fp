1024 SHA256:2lHYpmATaZGT/Gxazfn/U2glPt+qODJvFBNYQRs61sQ dsa@example.com (DSA)
