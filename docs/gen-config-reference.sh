#!/bin/sh
# Prints docs/configuration.md with the part between the reference markers
# replaced by `storaged --doc-config` output (headings moved one level
# down). Usage: docs/gen-config-reference.sh STORAGED CONF DOC > NEW_DOC
set -eu
storaged=$1 conf=$2 doc=$3
ref=$(mktemp)
trap 'rm -f "$ref"' EXIT
"$storaged" -c "$conf" --doc-config | sed -e '1{/^# /d}' -e 's/^#/##/' > "$ref"
awk -v ref="$ref" '
	/<!-- reference:begin -->/ { print; while ((getline line < ref) > 0) print line; skip = 1; next }
	/<!-- reference:end -->/ { skip = 0 }
	!skip { print }
' "$doc"
