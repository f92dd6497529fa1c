# frontends/sftp/module.mk - the SFTP front end (libssh server API).
MODULES += sftp
sftp_PKGS := libssh libcrypto
sftp_LDLIBS :=
