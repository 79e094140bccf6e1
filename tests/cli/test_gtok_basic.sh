# gtok's commands on a corpus the test makes: train, encode, decode, show, count, vocab, help.
source "$TESTS/cli/lib.sh"
make_corpus corpus.txt

run "$GTOK" train --vocab-size 300 corpus.txt -o tok.model
expect_status 0 "train bpe"
check "train writes the model" test -s tok.model
check "train summary on stderr" grep -q "^gtok: tok.model: bpe model, 300 pieces, from 2000 lines" err
run "$GTOK" train -q --vocab-size 300 - -o tok2.model <corpus.txt
check "train from stdin is quiet with -q and deterministic" test ! -s err
check "same seed, same model" cmp -s tok.model tok2.model
run "$GTOK" train -q --vocab-size 300 --seed 2 --model-type unigram corpus.txt -o uni.model
expect_status 0 "train unigram"
run "$GTOK" train -q --model-type char corpus.txt -o char.model
expect_status 0 "train char"

# Round trips, text and binary, files and pipes.
printf 'The fox\tjumps  over\r\n  \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xe2\x96\x81 end  \n\n\xff\xfe tail' >hard.txt
cat corpus.txt hard.txt >all.txt
for model in tok.model uni.model char.model; do
  run "$GTOK" encode -m $model all.txt -o all.ids
  expect_status 0 "encode with $model"
  run "$GTOK" decode -m $model all.ids -o back.txt
  check "text ids round trip exactly with $model" cmp -s all.txt back.txt
  "$GTOK" encode -m $model --binary <all.txt | "$GTOK" decode -m $model >back.txt
  check "binary ids through pipes round trip exactly with $model" cmp -s all.txt back.txt
done
check "binary ids start with the magic and version 1" \
  test "$("$GTOK" encode -m tok.model --binary corpus.txt | head -c 8 | od -An -c | tr -d ' ')" = 'GIDS001\0\0\0'
run "$GTOK" encode -m char.model corpus.txt
check "char model: one token per character" test "$(wc -w <out)" -eq "$(wc -m <corpus.txt)"
newline_id=$("$GTOK" vocab -m char.model | awk -F'\t' '$2 == "\\n" {print $1}')
check "a line of ids ends at each newline token" test "$(awk -v n="$newline_id" '$NF == n' out | wc -l)" -eq "$(wc -l <corpus.txt)"
"$GTOK" encode -m tok.model corpus.txt hard.txt >two.ids
"$GTOK" encode -m tok.model all.txt >one.ids
check "several inputs encode as one stream" cmp -s one.ids two.ids

# The newline is a token like any other.
run "$GTOK" encode -m tok.model --pieces corpus.txt
check "pieces end each line with the newline piece" test "$(head -1 out | awk '{print $NF}')" = '\n'

# show
run "$GTOK" show -m tok.model "unbelievable fox"
expect_status 0 "show"
check "show marks boundaries and keeps the text" test "$(tr -d '|' <out)" = "unbelievable fox"
check "show splits into pieces" grep -q '|' out
run "$GTOK" show -m char.model --ids "to be"
check "show --ids" grep -qE '^t\([0-9]+\)\|o\([0-9]+\)\| \([0-9]+\)\|b' out
printf 'to be\nor not\n' | "$GTOK" show -m char.model >out
check "show from stdin shows the newline token" test "$(head -1 out)" = 't|o| |b|e|\n'

# count
run "$GTOK" count -m char.model corpus.txt hard.txt
expect_status 0 "count"
check "count header" test "$(head -1 out)" = "$(printf 'file\ttokens\tchars\tbytes\tchars/token')"
check "count: char model on its corpus has chars/token 1" \
  test "$(awk -F'\t' '$1 == "corpus.txt" {print $2 == $3 && $3 == $4 && $5 == "1.000"}' out)" = 1
check "count: total row" grep -q "^total" out
run "$GTOK" count -m tok.model --lines hard.txt
check "count --lines: a row per line" test "$(tail -n +2 out | wc -l)" -eq 4
check "count --lines: bytes add up" test "$(tail -n +2 out | awk -F'\t' '{s += $5} END {print s}')" -eq "$(wc -c <hard.txt)"

# vocab
run "$GTOK" vocab -m tok.model
check "vocab has a header and a row per piece" test "$(wc -l <out)" -eq 301
check "vocab shows the newline and byte pieces" grep -qP '^\d+\t\\n\t0\tuser$' out
check "vocab shows byte pieces" grep -qP '^\d+\t<0x41>\t0\tbyte$' out

# help: stdout, exit 0, with examples
for cmd in "" train encode decode count show vocab; do
  run "$GTOK" $cmd --help
  expect_status 0 "gtok $cmd --help"
  check "gtok $cmd --help has examples" grep -q "Examples:" out
done
run "$GTOK" --version
check "--version" grep -q "gtok 0.1.0" out

# Empty input: encode writes nothing and succeeds.
: >empty.txt
run "$GTOK" encode -m tok.model empty.txt
expect_status 0 "encode empty input"
check "encode empty input writes nothing" test ! -s out
run "$GTOK" encode -m tok.model --binary empty.txt -o empty.ids
check "encode empty input to binary writes an empty file" test -f empty.ids -a ! -s empty.ids
run "$GTOK" decode -m tok.model empty.ids
check "decode of an empty stream writes nothing" test "$status" -eq 0 -a ! -s out
no_temp_files "after the basic commands"
finish
