# decode(encode(x)) == x byte for byte, for every model type, on whole corpora: the
# tinyshakespeare benchmark corpus (argument 1), Debian's fortunes, and generated hard text.
# The char model must give one token per character on tinyshakespeare (nanoGPT's 65 symbols).
source "$TESTS/cli/lib.sh"
shakespeare=$1
fortunes=/usr/share/games/fortunes
cat "$fortunes"/*.u8 >fortunes.txt
check "fortunes corpus present (Debian package fortunes)" test -s fortunes.txt
awk 'BEGIN { srand(5);
  split("\t|  |   |\r\n|\n|\n\n| |\xe4\xb8\xad\xe6\x96\x87|\xf0\x9f\x98\x80|\xe2\x96\x81|caf\xc3\xa9|the|fox|\xff|\xc3", f, "|");
  for (i = 0; i < 20000; i++) printf "%s", f[1 + int(rand() * length(f))] }' >generated.txt
printf '  leading spaces, trailing spaces  \r\nCRLF line\r\n\ttab\t\n' >>generated.txt

for type in bpe unigram char word; do
  for corpus in "$shakespeare" fortunes.txt; do
    name=$(basename "$corpus" .txt)
    run "$GTOK" train -q --model-type $type "$corpus" -o $type-$name.model
    expect_status 0 "train $type on $name"
    for text in "$corpus" generated.txt; do
      "$GTOK" encode -m $type-$name.model --binary "$text" -o ids.bin
      "$GTOK" decode -m $type-$name.model ids.bin -o back.txt
      check "$type model of $name: exact round trip of $(basename "$text")" cmp -s "$text" back.txt
      "$GTOK" encode -m $type-$name.model --binary --encoder sentencepiece "$text" -o reference.bin
      check "$type model of $name: gtok's encoder gives sentencepiece's ids on $(basename "$text")" \
        cmp -s ids.bin reference.bin
    done
  done
done
# A word model too small to hold the space piece: spaces go through the byte piece <0x20>.
"$GTOK" train -q --model-type word --vocab-size 500 "$shakespeare" -o word-500.model
"$GTOK" encode -m word-500.model "$shakespeare" | "$GTOK" decode -m word-500.model -o back.txt
check "word model with 500 pieces: exact round trip of tinyshakespeare" cmp -s "$shakespeare" back.txt
run "$GTOK" count -m char-tinyshakespeare.model "$shakespeare"
check "char model: one token per character of tinyshakespeare" \
  test "$(awk -F'\t' 'NR == 2 {print $2 == $3}' out)" = 1
"$GTOK" encode -m char-tinyshakespeare.model "$shakespeare" | tr ' ' '\n' | sort -u | grep -c . >symbols
check "char model: tinyshakespeare uses 65 distinct symbols, as in nanoGPT" test "$(cat symbols)" -eq 65
finish
