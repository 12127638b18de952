MEQCIH34xYtv5Upi
cMrafdPEgwnKv7/b
TnUR7BqQg1cvhK3N
AiBwFiMa88EYnB/I
rLaWUkamcyv12Cml
+Fverwxfp94C7Q==
