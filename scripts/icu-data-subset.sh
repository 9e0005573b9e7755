#!/bin/sh
# Make a small libicudata for the image: Debian's holds all of ICU's data (30 MB: locales,
# collation, converters), loaded because libmongoc links ICU, which it uses for one thing
# only: SASLprep (RFC 4013 string preparation of a non-ASCII SCRAM-SHA-256 password).
# This keeps the string-preparation profiles and normalization tables (about 430 KB) and
# drops the rest, and builds a library with the same soname and data symbol. It runs in
# the Dockerfile's build stage (gcc, binutils, icu-devtools).
#
#   icu-data-subset.sh OUTDIR      -> OUTDIR/libicudata.so.NN
set -eu

OUT=${1:?usage: icu-data-subset.sh OUTDIR}
LIBC=$(ldd /bin/sh | awk '$1 ~ /^libc\.so/ { print $3 }')
LIBDIR=$(dirname "$(readlink -f "$LIBC")")
LIB=$(ls "$LIBDIR"/libicudata.so.[0-9]* | grep -E '\.so\.[0-9]+$' | head -1)
[ -n "$LIB" ] || { echo "icu-data-subset: no libicudata.so.NN in $LIBDIR" >&2; exit 1; }
MAJOR=${LIB##*.so.}
SYM=icudt${MAJOR}_dat
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The data is one symbol in .rodata: its address and size, and the section's file offset.
set -- $(objdump -T "$LIB" | awk -v s="$SYM" '$NF == s { print $1, $(NF-1) }')
[ $# -eq 2 ] || { echo "icu-data-subset: no symbol $SYM in $LIB" >&2; exit 1; }
addr=$((0x$1))
size=$((0x$2))
set -- $(objdump -h "$LIB" | awk '$2 == ".rodata" { print $4, $6 }')
off=$((addr - 0x$1 + 0x$2))
PKG=icudt${MAJOR}l
mkdir -p "$WORK/all" "$WORK/pkg"
tail -c +$((off + 1)) "$LIB" | head -c "$size" >"$WORK/all/$PKG.dat"

# Keep: the StringPrep profiles (*.spp), the normalization data (*.nrm), the converter
# alias table and ICU's version and standard data; every locale, collation, break
# iterator and converter goes.
icupkg -l "$WORK/all/$PKG.dat" >"$WORK/items"
grep -E '^[^/]+\.(spp|nrm)$|^(cnvalias\.icu|icuver\.res|icustd\.res)$' "$WORK/items" >"$WORK/keep"
grep -q '^rfc4013\.spp$' "$WORK/keep" || { echo "icu-data-subset: rfc4013.spp is not in $LIB" >&2; exit 1; }
grep -vxF -f "$WORK/keep" "$WORK/items" >"$WORK/remove.lst"
# The items are named after the package file ($PKG/...), as the library's are.
# (a list file's name must end in .lst, and it is read from the current directory)
(cd "$WORK" && icupkg -r remove.lst "all/$PKG.dat" "pkg/$PKG.dat")
(cd "$WORK/pkg" && genccode -q -e "icudt$MAJOR" -a gcc -f icudt "$PKG.dat")
mkdir -p "$OUT"
gcc -shared -nostdlib -Wl,-soname,"libicudata.so.$MAJOR" -o "$OUT/libicudata.so.$MAJOR" "$WORK/pkg/icudt.S"

# Check it: SASLprep through libicuuc with this data, as libmongoc calls it (a soft hyphen
# maps to nothing, U+2168 ROMAN NUMERAL NINE and U+00AA normalise to "IX" and "a").
cat >"$WORK/check.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <unicode/usprep.h>
#include <unicode/ustring.h>
int main(void)
{
	UErrorCode st = U_ZERO_ERROR;
	UStringPrepProfile *p = usprep_openByType(USPREP_RFC4013_SASLPREP, &st);
	UChar in[64], out[64];
	char utf8[128];
	int32_t n, m;

	u_strFromUTF8(in, 64, &n, "I\xc2\xadX \xe2\x85\xa8 \xc2\xaa", -1, &st);
	m = U_SUCCESS(st) ? usprep_prepare(p, in, n, out, 64, USPREP_DEFAULT, NULL, &st) : 0;
	if (U_SUCCESS(st))
		u_strToUTF8(utf8, sizeof(utf8), &n, out, m, &st);
	if (U_FAILURE(st) || strcmp(utf8, "IX IX a")) {
		fprintf(stderr, "icu-data-subset: SASLprep fails with the small data: %s\n",
			u_errorName(st));
		return 1;
	}
	return 0;
}
C
gcc -o "$WORK/check" "$WORK/check.c" -licuuc
LD_LIBRARY_PATH=$OUT "$WORK/check"
echo "icu-data-subset: $OUT/libicudata.so.$MAJOR ($(wc -c <"$OUT/libicudata.so.$MAJOR") bytes, SASLprep checked)" >&2
