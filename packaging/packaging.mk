# packaging/packaging.mk - package targets, included by the top Makefile.
#
#   make deb           dist/storaged_VERSION_ARCH.deb (debhelper), lintian-clean
#   make rpm           dist/storaged-VERSION-1.ARCH.rpm (rpmbuild)
#   make package-test  build both, install the .deb on this machine, exercise
#                      it as the storaged user, remove, purge (needs root)
#
# Each installs its tools first (packaging/install-deps.sh --package).

.PHONY: deb rpm package-test

deb:
	@packaging/install-deps.sh --package
	@packaging/build-deb.sh $(VERSION)

rpm:
	@packaging/install-deps.sh --package
	@packaging/build-rpm.sh $(VERSION)

package-test:
	@packaging/install-deps.sh --package
	@packaging/test-package.sh $(VERSION)
