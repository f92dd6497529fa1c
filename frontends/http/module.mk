# HTTP/REST front end (libmicrohttpd) -> frontends/http.so
MODULES += http
http_PKGS := libmicrohttpd jansson libsodium libxml-2.0 zlib
http_LDLIBS :=
# the JSON form of engine types, shared with storagectl --json
http_SHARED_SRC := util/sdjson.c
