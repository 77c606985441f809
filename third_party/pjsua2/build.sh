#!/bin/sh
# Build PJSIP 2.15.1 with the raised limits of config_site.h and its SWIG Python module
# (pjsua2) into a wheel for the given interpreter. ~3 minutes on 2 cores.
#
#   third_party/pjsua2/build.sh PYTHON WHEEL_DIR [BUILD_DIR]
#
# Needs Debian's build-essential (g++), swig, uuid-dev, python3-dev, xz-utils.
# Static libraries, epoll ioqueue, no video, null sound, no SSL/SRTP and none of the
# optional codecs (PCMU/PCMA/G722/GSM/speex/iLBC stay): the IVR talks RTP over loopback.
set -eu

PYTHON=${1:?usage: build.sh PYTHON WHEEL_DIR [BUILD_DIR]}
WHEELS=${2:?usage: build.sh PYTHON WHEEL_DIR [BUILD_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${3:-$ROOT/build/pjsua2}
VERSION=2.15.1
TARBALL=$ROOT/third_party/pjproject-$VERSION.tar.xz
SHA256=b5a4c4f73fd10cd92ccf6d43c1889015b1a05839c2436f1e41f39ad42c69dba9
SRC=$BUILD/pjproject-$VERSION
JOBS=$(nproc)
case $PYTHON in */*) PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON") ;; esac
mkdir -p "$WHEELS"
WHEELS=$(cd "$WHEELS" && pwd)

echo "$SHA256  $TARBALL" | sha256sum -c --quiet -
for tool in g++ swig make; do
    command -v $tool >/dev/null || { echo "build.sh: $tool is missing (make deps)" >&2; exit 1; }
done

rm -rf "$SRC"
mkdir -p "$BUILD"
tar -xJf "$TARBALL" -C "$BUILD"
cp "$HERE/config_site.h" "$SRC/pjlib/include/pj/config_site.h"

cd "$SRC"
# -fPIC: the static libraries end up inside the Python extension module
./configure --enable-epoll --disable-shared --disable-video --disable-sound \
    --disable-ssl --disable-libsrtp --disable-upnp --disable-opencore-amr --disable-silk \
    --disable-opus --disable-bcg729 --disable-lyra --disable-libyuv --disable-libwebrtc \
    --disable-sdl --disable-ffmpeg --disable-v4l2 --disable-openh264 --disable-vpx \
    CFLAGS="-O2 -fPIC" CXXFLAGS="-O2 -fPIC" >"$BUILD/configure.log" 2>&1 \
    || { tail -20 "$BUILD/configure.log"; exit 1; }
make dep >"$BUILD/make.log" 2>&1 && make -j"$JOBS" lib >>"$BUILD/make.log" 2>&1 \
    || { tail -30 "$BUILD/make.log"; exit 1; }

# the SWIG wrapper, then a wheel of _pjsua2 + pjsua2.py for PYTHON (pip fetches
# setuptools and wheel into its isolated build environment)
cd pjsip-apps/src/swig/python
make pjsua2_wrap.cpp >>"$BUILD/make.log" 2>&1 || { tail -30 "$BUILD/make.log"; exit 1; }
rm -f "$WHEELS"/pjsua2-$VERSION-*.whl
"$PYTHON" -m pip wheel -q --use-pep517 --no-deps -w "$WHEELS" . >>"$BUILD/make.log" 2>&1 \
    || { tail -30 "$BUILD/make.log"; exit 1; }
ls "$WHEELS"/pjsua2-$VERSION-*.whl
