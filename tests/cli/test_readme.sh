# The documents' commands run as written: every ```sh block of README.md, in order, from a
# scratch copy of the checkout's root after `make demo` (build/tools, data/ and ../shared/data
# linked in), then the EXAMPLES of every man page, each page in a copy of the folder the README
# left (its files are the ones the examples name), with the tools on PATH. Only training lengths
# and sample counts are cut: --steps N on a training command becomes 1 + N/100 (rounded up, so
# a resumed run still goes past the first), --epochs N becomes --steps 2, and -n N at most 4.
# A training command without --steps or --epochs would run for minutes: the test refuses it.
# Blocks fenced ```shell (make demo, building by hand) are not run: make test runs this test.
source "$TESTS/cli/lib.sh"
every_tool
root=$(cd "$TESTS/.." && pwd)
shakespeare=${SHAKESPEARE:-$root/../shared/data/tinyshakespeare.txt}
if [ ! -f "$shakespeare" ]; then
  echo "SKIP: $shakespeare not found (the README reads it)"
  exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# The checkout's root as make demo leaves it, and ../shared beside it.
mkdir -p gen/build shared/data
ln -s "$(dirname "$GTOK")" gen/build/tools
ln -s "$root/data" gen/data
ln -s "$shakespeare" shared/data/tinyshakespeare.txt

# cut_lengths: the commands on stdin, with training lengths and sample counts cut (see above).
cut_lengths() {
  perl -pe '
    if (m{(/gtrain|\bgtrain|/(gdiffuse|ggan|gscore) train|^(gdiffuse|ggan|gscore) train)\b} && !/--evaluate/) {
      die "trains without --steps or --epochs: $_" unless /--steps \d|--epochs \d/;
      s/--steps (\d+)/"--steps " . (1 + int(($1 + 99) \/ 100))/ge;
      s/--epochs \d+/--steps 2/g;
    }
    s/(^|\s)-n (\d+)/$1 . "-n " . ($2 > 4 ? 4 : $2)/ge;
  '
}

# runs NAME SCRIPT: the script under bash -e in the current folder; a failure names the command.
runs() {
  local name=$1 script=$2
  {
    echo 'set -e'
    echo 'trap '\''echo "FAILED: $BASH_COMMAND" >&2'\'' ERR'
    cat "$script"
  } >"$script.run"
  if bash "$script.run" >"$script.log" 2>&1; then
    pass
  else
    fail "$name: a command failed as written"
    grep -E "^FAILED: " "$script.log" | head -3 >&2
    tail -5 "$script.log" | sed 's/^/  | /' >&2
  fi
}

# The README's blocks, one script, in order.
awk '/^```sh$/ { inside = 1; next } /^```/ { inside = 0 } inside' "$root/README.md" >readme.sh
check "the README has shell blocks" test "$(wc -l <readme.sh)" -ge 30
if cut_lengths <readme.sh >readme-cut.sh; then pass; else fail "README: $(cut_lengths <readme.sh 2>&1 >/dev/null)"; fi
cd gen && runs "README.md" ../readme-cut.sh
cd "$WORK" || exit 1
for made in tok.model corpus.ids char.model lm.st strip.png ddpm.st classes.png reverse.gif gan.st walk.gif \
  classifier.st samples/s-00003.png two-ranks.st classes-mpi.png; do
  check "README: $made was made" test -s "gen/out/try/$made"
done
check "README: the MPI and thread checkpoints are the same" grep -q "the same checkpoint, byte for byte" readme-cut.sh.log

# Each man page's EXAMPLES: the .EX blocks that are commands (not shown output), troff escapes
# undone, run with the tools on PATH in a copy of the README's folder.
ln -s "$root/data" gen/out/try/data
for page in "$root"/man/*.1; do
  name=$(basename "$page" .1)
  awk '/^\.SH EXAMPLES/ { on = 1; next } /^\.SH/ { on = 0 }
       on && /^\.EX/ { block = ""; first = ""; inside = 1; next }
       on && /^\.EE/ { if (first ~ /^(gtok|gtrain|gsample|gdiffuse|ggan|gscore|cat|printf|mkdir|awk|mpirun) /) printf "%s", block; inside = 0; next }
       on && inside { if (first == "") first = $0; block = block $0 "\n" }' "$page" |
    sed -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' -e 's/\\&//g' -e 's/\\e/\\/g' >"$name-examples.sh"
  check "$name.1 has examples" test -s "$name-examples.sh"
  if cut_lengths <"$name-examples.sh" >"$name-cut.sh"; then pass; else fail "$name.1: $(cut_lengths <"$name-examples.sh" 2>&1 >/dev/null)"; fi
  rm -rf "page-$name"
  cp -a gen/out/try "page-$name"
  cd "page-$name" && PATH="$(dirname "$GTOK"):$PATH" runs "man $name" "../$name-cut.sh"
  cd "$WORK" || exit 1
done

finish
