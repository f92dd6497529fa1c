# HTTP/REST front end (libmicrohttpd) -> frontends/http.so
MODULES += http
http_PKGS := libmicrohttpd jansson
http_LDLIBS :=
