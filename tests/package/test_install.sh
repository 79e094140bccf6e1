# The installed gen, as the package lays it out: `cmake --install BUILD --prefix /usr` into a
# DESTDIR outside the tree; every file the package promises is there; the installed tools run;
# the bash completion completes; and a small program of someone else's (consumer.cpp) builds
# against the installed headers and libgen.a, once with pkg-config and once with CMake's
# find_package(gen), and runs.
#   bash test_install.sh BUILD_DIR
source "$(dirname "$0")/../cli/lib.sh"
build=${1:?usage: test_install.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
dest=$WORK/root
DESTDIR=$dest cmake --install "$build" --prefix /usr >install.log 2>&1
check "cmake --install into a DESTDIR" test $? -eq 0
usr=$dest/usr
libdir=$(cd "$usr" && ls -d lib/*/pkgconfig lib/pkgconfig 2>/dev/null | head -1 | xargs dirname)

tools="gtok gtrain gsample gdiffuse ggan gscore"
for tool in $tools; do
  check "bin/$tool" test -x "$usr/bin/$tool"
  check "man1/$tool.1" test -s "$usr/share/man/man1/$tool.1"
  check "bash completion for $tool" test -s "$usr/share/bash-completion/completions/$tool"
  run "$usr/bin/$tool" --version
  check "the installed $tool runs" test "$status" -eq 0 -a "$(head -1 out)" = "$tool 0.1.0"
done
check "README in /usr/share/doc/gen" test -s "$usr/share/doc/gen/README.md"
check "LICENSE in /usr/share/doc/gen" test -s "$usr/share/doc/gen/LICENSE"
check "libgen.a" test -s "$usr/$libdir/libgen.a"
check "headers under include/gen" test -s "$usr/include/gen/core/files.h" -a -s "$usr/include/gen/models/gpt.h"
check "no source files among the headers" test -z "$(find "$usr/include" -name '*.cpp')"
check "gen.pc" test -s "$usr/$libdir/pkgconfig/gen.pc"
check "genConfig.cmake" test -s "$usr/$libdir/cmake/gen/genConfig.cmake"

# The completion, from the installed file, with the installed tools on PATH.
run env PATH="$usr/bin:$PATH" bash -c '
  source "$1"
  COMP_WORDS=(gtok en); COMP_CWORD=1; _gen_complete gtok; echo "${COMPREPLY[*]}"
  COMP_WORDS=(gsample lm.st --temp); COMP_CWORD=2; _gen_complete gsample; echo "${COMPREPLY[*]}"
  COMP_WORDS=(ggan train --loss w); COMP_CWORD=3; _gen_complete ggan; echo "${COMPREPLY[*]}"' _ \
  "$usr/share/bash-completion/completions/ggan"
check "completion: subcommands, options, option values" test "$(tr '\n' '|' <out)" = "encode|--temperature|wgan-gp|"

expected="sha256(abc) ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
gemm 58 64 139 154
png 4x3 pixel 200
error cannot open: no such file or directory"

# With pkg-config, as a Makefile would (the .pc file finds its prefix from where it lies).
export PKG_CONFIG_PATH=$usr/$libdir/pkgconfig
flags=$(pkg-config --cflags --libs gen 2>err)
check "pkg-config --cflags --libs gen" test $? -eq 0 -a -n "$flags"
# shellcheck disable=SC2086
g++ -O1 "$here/consumer.cpp" -o consumer-pc $flags 2>build-pc.log
check "consumer.cpp builds with pkg-config's flags" test $? -eq 0 -a -x consumer-pc
if [ -x consumer-pc ]; then :; else sed 's/^/  | /' build-pc.log | tail -15 >&2; fi
mkdir -p run-pc
run ./consumer-pc run-pc
check "and runs" test "$status" -eq 0 -a "$(cat out)" = "$expected"
unset PKG_CONFIG_PATH

# With CMake: find_package(gen) from the installed config files.
cmake -S "$here" -B consumer-build -G Ninja -DCMAKE_PREFIX_PATH="$usr" -DCMAKE_BUILD_TYPE=Release >cmake.log 2>&1 &&
  cmake --build consumer-build >>cmake.log 2>&1
check "consumer.cpp builds with find_package(gen)" test $? -eq 0 -a -x consumer-build/consumer
if [ -x consumer-build/consumer ]; then :; else sed 's/^/  | /' cmake.log | tail -15 >&2; fi
mkdir -p run-cmake
run consumer-build/consumer run-cmake
check "and runs" test "$status" -eq 0 -a "$(cat out)" = "$expected"
check "the installed tree holds nothing of the build tree" test -z "$(grep -rl "$build" "$usr/$libdir/cmake" "$usr/$libdir/pkgconfig" 2>/dev/null)"

finish
