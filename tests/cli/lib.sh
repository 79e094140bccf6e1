# Helpers for the CLI tests: each test script sources this, runs the built tools in a fresh
# temporary folder on files it makes itself, and ends with `finish`.
#   run CMD...            runs it; $status, files out and err hold exit status, stdout, stderr
#   expect_status N WHAT  checks $status
#   expect_error N RE WHAT  the command failed with status N and one stderr line matching
#                           "$TOOL: RE" (TOOL defaults to gtok)
set -u
GTOK=${GTOK:?GTOK must name the gtok binary}
WORK=$(mktemp -d /tmp/gen-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*" >&2
  if [ -s err ]; then sed 's/^/  stderr: /' err | head -5 >&2; fi
}
check() {  # check WHAT CMD...: passes if CMD succeeds
  local what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}
run() {
  "$@" >out 2>err
  status=$?
}
expect_status() {
  if [ "$status" -eq "$1" ]; then pass; else fail "$2: exit status $status, expected $1"; fi
}
expect_error() {  # expect_error STATUS REGEX WHAT
  expect_status "$1" "$3"
  local lines
  lines=$(wc -l <err)
  if [ "$lines" -eq 1 ] && grep -qE "^${TOOL:-gtok}: $2" err; then pass; else
    fail "$3: stderr should be one line matching '${TOOL:-gtok}: $2', was:"
    sed 's/^/  | /' err >&2
  fi
}
no_temp_files() {  # no hidden temporary outputs left in the folder
  local left
  left=$(find . -name '.*.tmp.*' | head -3)
  if [ -z "$left" ]; then pass; else fail "$1: temporary files left: $left"; fi
}

# A small English-like corpus, the same every time.
make_corpus() {
  awk 'BEGIN {
    split("the quick brown fox jumps over lazy dog token tokens model learns where lines end unbelievable to be or not that is question", w, " ");
    n = length(w); s = 7;
    for (line = 0; line < 2000; line++) {
      k = 3 + line % 9; out = "";
      for (i = 0; i < k; i++) { s = (s * 1103515245 + 12345) % 2147483648; out = out (i ? " " : "") w[1 + int(s / 65536) % n] }
      print out (line % 5 == 0 ? "." : "")
    }
  }' >"$1"
}

# every_tool: all six tools named (the scripts that use them all), and make_char_ids: corpus.txt,
# its character tokenizer char.model and its ids corpus.ids.
every_tool() {
  GTRAIN=${GTRAIN:?} GSAMPLE=${GSAMPLE:?} GDIFFUSE=${GDIFFUSE:?} GGAN=${GGAN:?} GSCORE=${GSCORE:?}
}
make_char_ids() {
  make_corpus corpus.txt
  "$GTOK" train -q --model-type char corpus.txt -o char.model || exit 1
  "$GTOK" encode -m char.model corpus.txt -o corpus.ids || exit 1
}

# same_pixels A B: two PNGs hold the same pixels (every chunk but their tEXt, which says how
# each was made: two commands that make the same image carry different text).
png_without_text() {
  /usr/bin/python3 -c '
import struct, sys
data = open(sys.argv[1], "rb").read()
out, at = [data[:8]], 8
while at + 12 <= len(data):
    n = struct.unpack(">I", data[at:at + 4])[0]
    if data[at + 4:at + 8] != b"tEXt":
        out.append(data[at:at + 12 + n])
    at += 12 + n
sys.stdout.buffer.write(b"".join(out))' "$1"
}
same_pixels() { cmp -s <(png_without_text "$1") <(png_without_text "$2"); }
export -f png_without_text same_pixels  # for checks run through bash -c

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# A labelled data set of 64 8x8 gray images as IDX, images.idx and labels.idx: class 0 bright
# on the left, class 1 on the right.
make_images() {
  LC_ALL=C awk 'BEGIN {
    printf "%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c%c", 0, 0, 8, 3, 0, 0, 0, 64, 0, 0, 0, 8, 0, 0, 0, 8
    for (i = 0; i < 64; i++) for (y = 0; y < 8; y++) for (x = 0; x < 8; x++)
      printf "%c", ((i % 2 == 0) == (x < 4)) ? 230 : 20
  }' >images.idx
  LC_ALL=C awk 'BEGIN { printf "%c%c%c%c%c%c%c%c", 0, 0, 8, 1, 0, 0, 0, 64; for (i = 0; i < 64; i++) printf "%c", i % 2 }' >labels.idx
}

# edit_meta SRC DST WHERE KEY JSON: a copy of checkpoint SRC with one field of its metadata set
# to the JSON value ("-" removes it), as a hostile file would; WHERE is "config" (the model
# config) or "settings" (the saved training settings). The header is re-padded; the tensors are
# untouched.
edit_meta() {
  /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
src, dst, where, key, value = sys.argv[1:6]
data = open(src, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
meta = header["__metadata__"]
outer = json.loads(meta["train" if where == "settings" else "config"])
fields = outer["settings"] if where == "settings" else outer
if value == "-":
    del fields[key]
else:
    fields[key] = json.loads(value)
meta["train" if where == "settings" else "config"] = json.dumps(outer)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + data[8 + n:])
PY
}
edit_config() { edit_meta "$1" "$2" config "$3" "$4"; }
