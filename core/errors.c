/*
 * errors.c - words for every error code the engine returns (a leaf: it
 * calls nothing else in the engine).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

const char *sd__strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case SD_ESENDDATA:
		return "content not stored here: send the data";
	case SD_ECHALLENGE:
		return "prove possession of the content";
	case SD_EPROOF:
		return "proof of possession refused";
	case SD_ECHECKSUM:
		return "content does not match the announced SHA-256";
	case SD_EAUTH:
		return "authentication failed";
	case SD_EBLOCKED:
		return "too many failed logins from this address; try again later";
	case SD_ECONFIG:
		return "configuration error";
	case SD_ECORRUPT:
		return "stored content is missing or damaged";
	case SD_EHISTORY:
		return "that moment is older than the history kept";
	case SD_ECHANGED:
		return "the file holds another version now";
	case ENOENT:
		return "no such file or directory";
	case EEXIST:
		return "file exists";
	case ENOTDIR:
		return "not a directory";
	case EISDIR:
		return "is a directory";
	case ENOTEMPTY:
		return "directory not empty";
	case EACCES:
		return "permission denied";
	case EROFS:
		return "read-only (a read-only login, or a snapshot)";
	case EDQUOT:
		return "quota exceeded";
	case ENOSPC:
		return "no space left on the server";
	case EBUSY:
		return "file is open in a conflicting mode, or locked";
	case EINVAL:
		return "invalid argument or path";
	case ENAMETOOLONG:
		return "name too long";
	case ESTALE:
		return "file changed meanwhile";
	case EBADF:
		return "no such open handle";
	case EMFILE:
		return "too many open handles";
	case ENOTSUP:
		return "not supported";
	case EFBIG:
		return "file too large";
	case ENOMEM:
		return "the server is out of memory";
	case ENOLCK:
		return "too many locks";
	default:
		return strerror(err);
	}
}
