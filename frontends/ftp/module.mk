# FTP/FTPS front end -> frontends/ftp.so (GnuTLS for FTPS; glibc iconv).
MODULES += ftp
ftp_PKGS := gnutls
ftp_LDLIBS :=
