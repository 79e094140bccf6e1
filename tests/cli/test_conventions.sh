# The conventions every tool keeps, checked on every command: --version and -q/--quiet
# everywhere, usage errors pointing to the subcommand's --help, the nearest option named for a
# mistyped one, unknown commands named, image outputs whose names say what they hold; and
# gtok decode --pieces.
source "$TESTS/cli/lib.sh"
every_tool

# Every command of every tool: --version prints "TOOL 0.1.0", --help lists -q/--quiet.
commands=("$GTOK train" "$GTOK encode" "$GTOK decode" "$GTOK count" "$GTOK show" "$GTOK vocab" "$GTRAIN" "$GSAMPLE"
  "$GDIFFUSE noise" "$GDIFFUSE train" "$GDIFFUSE sample" "$GDIFFUSE denoise" "$GGAN train" "$GGAN sample"
  "$GGAN interpolate" "$GGAN score" "$GGAN info" "$GDIFFUSE info" "$GSCORE train" "$GSCORE classify" "$GSCORE fid")
for command in "${commands[@]}"; do
  read -r -a words <<<"$command"
  tool=$(basename "${words[0]}")
  name="$tool${words[1]:+ ${words[1]}}"
  run "${words[@]}" --version
  check "$name --version" test "$status" -eq 0 -a "$(head -1 out)" = "$tool 0.1.0" -a "$(sed -n 's/^kernels: //p' out)" != ""
  run "${words[@]}" --help
  check "$name --help lists -q,--quiet" grep -q -- "-q,--quiet" out
  check "$name --help has examples" grep -q "^Examples:" out
  # An unknown option: one line naming it and pointing to this command's --help.
  run "${words[@]}" --no-such-option
  TOOL=$tool expect_error 2 "unknown option --no-such-option.* \\(see $name --help\\)$" "$name: an unknown option"
done

# What a start loads: OpenBLAS only when a product needs it (tensor/blas.h), cairo only in the
# tools that draw. The loader names every library it opens (LD_DEBUG=files).
for tool in "$GSAMPLE" "$GTOK"; do
  LD_DEBUG=files "$tool" --version >/dev/null 2>loaded
  check "$(basename "$tool") starts without OpenBLAS or cairo" \
    bash -c 'grep -q "file=libstdc++" loaded && ! grep -qE "file=lib(openblas|cairo)" loaded'
done

for tool in "$GTOK" "$GDIFFUSE" "$GGAN" "$GSCORE"; do
  run "$tool" --help
  check "$(basename "$tool") --help has examples" grep -q "^Examples:" out
done

# A mistyped option: the nearest real one is named (a cut-short name, or one a typo away).
TOOL=gsample
run "$GSAMPLE" lm.st --temp 0.5
expect_error 2 "unknown option --temp; did you mean --temperature\\? \\(see gsample --help\\)$" "--temp"
run "$GSAMPLE" lm.st --top_k 3
expect_error 2 "unknown option --top_k; did you mean --top-k\\?" "--top_k"
TOOL=ggan
run "$GGAN" sample gan.st --sed 3 -o x.png
expect_error 2 "unknown option --sed of ggan sample; did you mean --seed\\? \\(see ggan sample --help\\)$" "--sed"
# An unknown option is named before a required one found missing (--modle is why -m is missing).
TOOL=gtok
run "$GTOK" encode --modle tok.model
expect_error 2 "unknown option --modle of gtok encode; did you mean --model\\?" "--modle"
# A required option missing: the subcommand's --help, not the tool's.
TOOL=ggan
run "$GGAN" sample gan.st
expect_error 2 "--output is required \\(see ggan sample --help\\)$" "ggan sample without -o"
# An unknown command, with the nearest one; "help" is the tool's help.
TOOL=gdiffuse
run "$GDIFFUSE" sampel ddpm.st
expect_error 2 "unknown command 'sampel'; did you mean sample\\? \\(noise, train, sample, denoise or info\\)" "a mistyped command"
run "$GDIFFUSE" help
check "gdiffuse help prints the help" test "$status" -eq 0 -a "$(grep -c 'noise' out)" -ge 1
# A usage error found after parsing points to the subcommand too.
TOOL=gdiffuse
run "$GDIFFUSE" noise nothing.png --t 5 --steps 3 -o x.png
expect_error 2 "step 5 is outside 0..3 \\(--steps\\) \\(see gdiffuse noise --help\\)$" "a bad value found after parsing"

# Image outputs: the name's extension must say what is written.
TOOL=gdiffuse
for bad in x.jpg x.jpeg strip.bmp x.png.txt; do
  run "$GDIFFUSE" noise "$TESTS/../data/ankle-boot.png" --t 10 -o "$bad"
  expect_error 2 "-o '$bad': this is written as a PNG or an animated GIF; name it .png or .gif" "-o $bad"
  check "-o $bad: nothing written" test ! -e "$bad"
done
run "$GDIFFUSE" noise "$TESTS/../data/ankle-boot.png" --t 10 -o X.PNG
check "an upper-case .PNG is a PNG" test "$status" -eq 0 -a -s X.PNG
run "$GDIFFUSE" noise "$TESTS/../data/ankle-boot.png" --t 10 -o /dev/null
check "a name without an extension (/dev/null) is taken as it is" test "$status" -eq 0
TOOL=gtrain
run "$GTRAIN" --plot loss.svg -o lm.st /dev/null
expect_error 2 "--plot 'loss.svg': this is written as a PNG; name it .png" "--plot loss.svg"
TOOL=ggan
run "$GGAN" train --preview p.gif -o gan.st --steps 1
expect_error 2 "--preview 'p.gif': this is written as a PNG; name it .png" "--preview p.gif"

# -q silences progress and summaries, never errors or warnings.
TOOL=gtok
make_corpus corpus.txt
run "$GTOK" train --model-type char corpus.txt -o char.model
check "gtok train summarizes on stderr" grep -q "char model" err
run "$GTOK" train -q --model-type char corpus.txt -o char.model
check "gtok train -q: nothing on stderr" test "$status" -eq 0 -a ! -s err
run "$GTOK" decode -q -m char.model nothing.ids
expect_error 1 "nothing.ids: " "an error still shows under -q"

# gtok decode --pieces: the pieces gtok encode --pieces writes, back to the exact text.
printf 'To be,\tor not\\to be:\r\n  that is\x01 the question \xe2\x96\x81 \xff\n' >tricky.txt
"$GTOK" encode -m char.model --pieces tricky.txt >tricky.pieces
run "$GTOK" decode -m char.model --pieces tricky.pieces
check "encode --pieces | decode --pieces is exact (escapes, byte pieces, U+2581)" cmp -s out tricky.txt
"$GTOK" train -q --vocab-size 300 corpus.txt -o bpe.model || exit 1
"$GTOK" encode -m bpe.model --pieces corpus.txt | "$GTOK" decode -m bpe.model --pieces >back.txt
check "and for a BPE model on a corpus" cmp -s back.txt corpus.txt
{ head -1 tricky.pieces; echo zzz-not-a-piece; } >bad.pieces
run "$GTOK" decode -m char.model --pieces bad.pieces
expect_error 1 "bad.pieces:2: 'zzz-not-a-piece' is not a piece of char.model$" "an unknown piece"
printf 'a \\q b\n' >bad.pieces
run "$GTOK" decode -m char.model --pieces bad.pieces
expect_error 1 "bad.pieces:1: '\\\\q' is a malformed escape in a piece of char.model$" "a malformed escape"

finish
