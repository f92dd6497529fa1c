# frontends/sftp/module.mk - the SFTP front end (libssh server API).
MODULES += sftp
sftp_PKGS := libssh
sftp_LDLIBS :=
