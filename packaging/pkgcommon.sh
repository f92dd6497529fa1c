# packaging/pkgcommon.sh - helpers shared by build-deb.sh and build-rpm.sh.

# sd_copy_tree ROOT DEST: copy the source tree without .git, build outputs,
# packages and local data.
sd_copy_tree() {
	tar -C "$1" \
		--exclude=./.git --exclude=./build --exclude=./dist --exclude=./var \
		--exclude=./storaged --exclude=./storagectl --exclude=./stor --exclude='./frontends/*.so' \
		--exclude=__pycache__ --exclude='*.o' --exclude=./.pytest_cache \
		-cf - . | tar -C "$2" -xf -
}
