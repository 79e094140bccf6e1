# Bad input: one line on stderr naming the file and the problem, non-zero exit, no output file.
source "$TESTS/cli/lib.sh"
make_corpus corpus.txt
"$GTOK" train -q --vocab-size 300 corpus.txt -o tok.model || exit 1
"$GTOK" train -q --vocab-size 200 --no-byte-fallback corpus.txt -o nofb.model || exit 1

run "$GTOK" encode -m tok.model missing.txt -o out.ids
expect_error 1 "missing.txt: cannot open: no such file or directory$" "missing input"
check "no output after a missing input" test ! -e out.ids
run "$GTOK" encode -m missing.model corpus.txt
expect_error 1 "missing.model: cannot open: no such file or directory$" "missing model"
mkdir folder
run "$GTOK" encode -m tok.model folder
expect_error 1 "folder: is a directory$" "a folder as input"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  cp corpus.txt secret.txt && chmod 000 secret.txt && chmod 755 "$WORK"
  run setpriv --reuid=nobody --regid=nogroup --clear-groups "$GTOK" encode -m "$WORK/tok.model" "$WORK/secret.txt"
  expect_error 1 ".*secret.txt: cannot open: permission denied$" "unreadable input"
fi

# Not a model.
run "$GTOK" encode -m corpus.txt corpus.txt
expect_error 1 "corpus.txt: not a tokenizer model" "a text file as the model"
: >empty.model
run "$GTOK" decode -m empty.model corpus.txt
expect_error 1 "empty.model: not a tokenizer model \(empty file\)$" "an empty model"
head -c 200 tok.model >cut.model
run "$GTOK" vocab -m cut.model
expect_error 1 "cut.model: not a tokenizer model" "a truncated model"

# Training errors.
: >empty.txt
run "$GTOK" train empty.txt -o e.model
expect_error 1 "empty.txt: no text to train on \(empty input\)$" "train on empty input"
check "no model after failed training" test ! -e e.model
run "$GTOK" train -q --vocab-size 100000 corpus.txt -o big.model
expect_error 1 "corpus.txt: vocab size 100000 cannot be reached for a bpe model on this text: .*<= [0-9]+" "vocab too large"
check "no model after an unreachable vocab size" test ! -e big.model
run "$GTOK" train -q --vocab-size 50 corpus.txt -o small.model
expect_error 1 "corpus.txt: vocab size 50 cannot be reached" "vocab smaller than the characters and bytes"
run "$GTOK" train -q --model-type char --vocab-size 50 corpus.txt -o small.model
expect_error 1 "corpus.txt: vocab size 50 cannot be reached for a char model" "char vocab too small"
run "$GTOK" train -q corpus.txt -o nodir/tok.model
expect_error 1 "nodir/tok.model: cannot create: no such file or directory$" "output in a missing folder"

# Invalid UTF-8: exact by default, --strict rejects it with the byte offset.
printf 'good line\nbad \xff\xfe byte\n' >bad.txt
run "$GTOK" encode -m tok.model bad.txt -o bad.ids
expect_status 0 "invalid UTF-8 is encoded as byte tokens"
"$GTOK" decode -m tok.model bad.ids | cmp -s - bad.txt
check "invalid UTF-8 round trips exactly" test $? -eq 0
run "$GTOK" encode -m tok.model --strict bad.txt -o strict.ids
expect_error 1 "bad.txt: invalid UTF-8 at byte offset 14$" "--strict rejects invalid UTF-8"
check "no output after --strict fails" test ! -e strict.ids
printf 'the fox \xe4\xb8\xad\n' >cjk.txt
run "$GTOK" encode -m nofb.model --strict cjk.txt
expect_error 1 "cjk.txt: byte offset 8: '.+' is not in the vocabulary of nofb.model \(it has no byte fallback\)$" \
  "--strict rejects characters a model without byte fallback cannot carry"
run "$GTOK" encode -m nofb.model cjk.txt
check "without --strict such a model warns that the text did not fit" \
  grep -q "warning: 1 pieces of text outside the vocabulary of nofb.model became <unk>" err

# A literal U+2581 (sentencepiece's space) without byte fallback: <unk>, or an error when strict.
printf 'x\xe2\x96\x81y\n' >mark.txt
run "$GTOK" encode -m nofb.model --strict mark.txt
expect_error 1 "mark.txt: byte offset 1: '.+' \(U\+2581\) is not in the vocabulary of nofb.model" \
  "--strict rejects a literal U+2581 without byte fallback"
run "$GTOK" encode -m nofb.model mark.txt
check "a literal U+2581 without byte fallback warns" grep -q "became <unk>" err

# A model made by sentencepiece with its defaults (NFKC, dummy prefix, no byte fallback, no
# newline piece): usable, with warnings, never silently wrong.
if command -v spm_train >/dev/null; then
  spm_train --input=corpus.txt --model_prefix=spm --vocab_size=60 --hard_vocab_limit=false --minloglevel=2 \
    >/dev/null 2>&1
  run "$GTOK" encode -m spm.model corpus.txt -o spm.ids
  expect_status 0 "encode with a plain sentencepiece model"
  check "it warns that the model normalizes text" grep -q "warning: spm.model: this model normalizes text" err
  check "it warns that line breaks became <unk>" grep -q "became <unk>" err
  run "$GTOK" encode -m spm.model --strict corpus.txt
  expect_error 1 "corpus.txt: byte offset [0-9]+: a line break cannot be represented by spm.model" \
    "--strict with a model that has no newline piece"
  printf 'two  spaces' >spaces.txt
  run "$GTOK" encode -m spm.model --strict spaces.txt
  expect_error 1 "spaces.txt: byte offset 0: the text does not come back unchanged from spm.model" \
    "--strict with a model that normalizes"
  check "show names the model once" test "$(echo hi | "$GTOK" show -m spm.model 2>&1 | grep -c 'spm.model: spm.model')" -eq 0
fi

# Bad ids.
printf '1 2 3\n4 -5 6\n' >neg.ids
run "$GTOK" decode -m tok.model neg.ids -o neg.txt
expect_error 1 "neg.ids:2:3: negative token id -5$" "negative id"
check "no output after bad ids" test ! -e neg.txt
printf '10 20\n\n  30 x7 40\n' >word.ids
run "$GTOK" decode -m tok.model word.ids
expect_error 1 "word.ids:3:6: 'x7' is not a token id$" "non-numeric id"
printf '10 300\n' >big.ids
run "$GTOK" decode -m tok.model big.ids
expect_error 1 "big.ids:1:4: token id 300 is outside the vocabulary of tok.model \(0..299\)$" "id out of vocabulary"
printf 'GIDS\001\000\000\000\005\000\000\000\377\377\000\000' >big.bin
run "$GTOK" decode -m tok.model big.bin
expect_error 1 "big.bin: id #2: token id 65535 is outside the vocabulary" "binary id out of vocabulary"
printf 'GIDS\001\000\000\000\005\000\000' >cut.bin
run "$GTOK" decode -m tok.model cut.bin
expect_error 1 "cut.bin: truncated binary token stream: 3 stray bytes after id #0$" "truncated binary ids"

# Usage errors: exit 2, one line.
run "$GTOK"
expect_error 2 ".*subcommand is required" "no subcommand"
run "$GTOK" encode corpus.txt
expect_error 2 ".*--model.*required" "missing --model"
run "$GTOK" train --model-type nope corpus.txt -o x.model
expect_error 2 ".*nope" "unknown model type"
run "$GTOK" train --vocab-size 0 corpus.txt -o x.model
expect_error 2 ".*vocab-size" "vocab size 0"
run "$GTOK" help
check "gtok help prints the help" grep -q "Examples:" out
run "$GTOK" show -m tok.model -f corpus.txt some text
expect_error 2 ".*excludes" "show with both a file and text"
run "$GTOK" train --character-coverage nan corpus.txt -o x.model
expect_error 2 "--character-coverage: nan is not a finite number" "NaN coverage"
run "$GTOK" train --vocab-size 1 corpus.txt -o x.model
expect_error 1 "corpus.txt: vocab size 1 cannot be reached for a bpe model: it needs at least 261 pieces" "vocab size 1"
printf '\n\n\n' >blank.txt
run "$GTOK" train blank.txt -o x.model
expect_error 1 "blank.txt: no text to train on \(only empty lines\)$" "only empty lines"
run "$GTOK" bogus corpus.txt
expect_error 2 "unknown command 'bogus'" "unknown command"
run "$GTOK" encode -m tok.model --frobnicate corpus.txt
expect_error 2 ".*frobnicate" "unknown option"
run "$GTOK" encode -m tok.model --pieces --binary corpus.txt
expect_error 2 ".*excludes" "--pieces with --binary"
no_temp_files "after the errors"
finish
