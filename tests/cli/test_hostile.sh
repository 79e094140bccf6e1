# Hostile input: each case here once crashed a tool, hung it, wrapped a number around or
# allocated gigabytes before looking; now each gives one clear line and a non-zero exit. (The
# numbers are those of the hostile-input issue's list of defects.)
source "$TESTS/cli/lib.sh"
every_tool
make_char_ids
"$GTRAIN" -q --tokenizer char.model --layers 2 --heads 2 --embd 64 --context 32 --batch 4 --steps 2 corpus.ids \
  -o lm.st || exit 1

# 1. A checkpoint cut short in place while a tool reads it: tensors are read with pread, never
# mapped, so the reader sees a short read (one line naming the file), never SIGBUS.
TOOL=gsample
worst=0
for delay in 0 0.001 0.003 0.01 0.03; do
  cp lm.st cut.st
  "$GSAMPLE" cut.st -n 20 -p the --seed 1 >/dev/null 2>err &
  pid=$!
  sleep $delay
  truncate -s 1000 cut.st
  wait $pid
  status=$?
  [ $status -gt $worst ] && worst=$status
  if [ $status -ne 0 ] && ! { [ "$(wc -l <err)" -eq 1 ] && grep -q "^gsample: cut.st: " err; }; then
    fail "truncated at ${delay}s: not one line naming the file"
  fi
done
check "a checkpoint truncated while read: never a signal (worst exit $worst)" test $worst -lt 128

# 2. A small file whose config describes a huge model: refused before anything is allocated.
edit_config lm.st wide.st embd 2048
run "$GSAMPLE" wide.st -n 2 -p the
expect_error 1 "wide.st: its config describes a model of [0-9]+ parameters, more than the file's [0-9]+ bytes of tensors hold" \
  "embd 2048 in a small checkpoint"
edit_config lm.st huge.st embd 65536
run "$GSAMPLE" huge.st -n 2 -p the
expect_error 1 "huge.st: its config describes a model of" "embd 65536: not 'out of memory'"

# 13. Config numbers that are not whole are refused, never truncated or cast.
edit_config lm.st frac.st context 16.7
run "$GSAMPLE" frac.st -n 2 -p the
expect_error 1 "frac.st: the model config's 'context' is 16.7, not a whole number" "context 16.7"
edit_config lm.st e30.st layers 1e30
run "$GSAMPLE" e30.st -n 2 -p the
expect_error 1 "e30.st: the model config's 'layers' is 1e\+30, not a whole number" "layers 1e30"
make_images
TOOL=gdiffuse
"$GDIFFUSE" train -q --data images.idx --labels labels.idx --channels 8,16 --groups 4 --time-dim 16 --batch 8 --T 20 \
  --steps 1 -o d.st || exit 1
edit_config d.st d-frac.st channels '[8, 16.5]'
run "$GDIFFUSE" sample d-frac.st -n 1 -o x.png
expect_error 1 "d-frac.st: the model config's 'channels' is 16.5, not a whole number" "U-Net channels 16.5"
TOOL=ggan
"$GGAN" train -q --data images.idx --labels labels.idx --latent 8 --g-channels 16 --d-channels 8 --batch 8 --steps 1 -o g.st || exit 1
edit_config g.st g-wide.st g_channels 4096
run "$GGAN" sample g-wide.st -n 1 -o x.png
expect_error 1 "g-wide.st: its config describes a model of" "GAN g_channels 4096 in a small file"
TOOL=gscore
"$GSCORE" train -q --data images.idx --labels labels.idx --channels 4,8 --features 8 --batch 16 --steps 1 -o c.st \
  || exit 1
edit_config c.st c-wide.st features 65536
run "$GSCORE" classify c-wide.st x.png
expect_error 1 "c-wide.st: its config describes a model of" "classifier features 65536 in a small file"
check "no output left behind" test ! -e x.png

# 3. NaN and infinity are refused wherever a number is (CLI11's own ranges let NaN through),
# and a message echoes no more than 40 characters of what was typed.
TOOL=gsample
run "$GSAMPLE" lm.st --min-p nan
expect_error 2 "--min-p: nan is not a finite number" "--min-p nan"
run "$GSAMPLE" lm.st --repeat-penalty nan
expect_error 2 "--repeat-penalty: nan is not a finite number" "--repeat-penalty nan"
run "$GSAMPLE" lm.st --top-p inf
expect_error 2 "--top-p: inf is not a finite number" "--top-p inf"
TOOL=gdiffuse
for bad in nan inf; do
  run "$GDIFFUSE" sample d.st --guidance $bad -o x.png
  expect_error 2 "--guidance: $bad is not a finite number" "--guidance $bad"
done
run "$GDIFFUSE" sample d.st --eta nan -o x.png
expect_error 2 "--eta: nan is not a finite number" "--eta nan"
run "$GDIFFUSE" sample d.st --eta -5 -o x.png
expect_error 2 "--eta: -5 is outside \[0, 1\]" "--eta -5"
TOOL=ggan
run "$GGAN" train --data images.idx --time-limit nan -o x.st
expect_error 2 "--time-limit: nan is not a finite number" "ggan --time-limit nan"
TOOL=gtrain
run "$GTRAIN" --tokenizer char.model --lr inf corpus.ids -o x.st
expect_error 2 "--lr: inf is not a finite number" "--lr inf"
run "$GTRAIN" --tokenizer char.model --lr 1e308 corpus.ids -o x.st
check "--lr 1e308: a short line, not 309 digits" test "$(wc -c <err)" -lt 200

# 4. A seed is a 64-bit unsigned integer: nothing else wraps around into one.
TOOL=gsample
for bad in -1 99999999999999999999 1e3 0x10; do
  run "$GSAMPLE" lm.st -n 2 -p the --seed "$bad"
  expect_error 2 "--seed: $bad is not a seed \(a whole number 0..18446744073709551615\)" "--seed $bad"
done
run "$GSAMPLE" lm.st -n 2 -p the --seed 18446744073709551615
expect_status 0 "--seed 2^64-1 is a seed"
TOOL=ggan
run "$GGAN" sample g.st --seed -1 -o x.png
expect_error 2 "--seed: -1 is not a seed" "ggan sample --seed -1"
TOOL=gdiffuse
run "$GDIFFUSE" sample d.st --seed 99999999999999999999 -o x.png
expect_error 2 "--seed: 99999999999999999999 is not a seed" "gdiffuse sample --seed 2^66"
TOOL=gtrain
run "$GTRAIN" --tokenizer char.model --seed -1 corpus.ids -o x.st
expect_error 2 "--seed: -1 is not a seed" "gtrain --seed -1"
check "no output left behind" test ! -e x.png -a ! -e x.st

# 5. An empty stop text would stop before the first token: refused.
TOOL=gsample
run "$GSAMPLE" lm.st -n 2 -p the --stop ""
expect_error 2 "--stop: an empty stop text would stop at once" "--stop ''"

# 6. Two outputs of one command on one path: refused, not written over each other.
TOOL=gdiffuse
run "$GDIFFUSE" sample d.st -n 2 --gif same.png -o same.png
expect_error 2 "-o and --gif name the same file 'same.png'" "--gif X -o X"
run "$GDIFFUSE" sample d.st -n 2 --trajectory ./same.png -o same.png
expect_error 2 "-o and --trajectory name the same file './same.png'" "--trajectory ./X -o X"
check "nothing written" test ! -e same.png

# 7. A numbered output's pattern is checked before the work, and an error line echoes at most
# 40 characters of it.
run "$GDIFFUSE" sample d.st -n 2 -o 'g-%999999d.png'
expect_error 2 "-o 'g-%999999d.png': a numbered output needs one field like %03d" "-o g-%999999d.png"
long=$(printf 'x%.0s' $(seq 300))
run "$GDIFFUSE" sample d.st -n 2 -o "$long-%s.png"
check "a 300-character pattern: the error line is short" test "$(wc -c <err)" -lt 200

# 11. Messages that name the option and say what is wrong.
run "$GDIFFUSE" noise data.png --t -1 -o x.png
expect_error 2 "--t: Value -1 not in range" "noise --t -1: names --t's range"
run "$GDIFFUSE" sample d.st -n 2 -o nowhere/s-%d.png
expect_error 1 "nowhere/s-%d.png: cannot write there: the folder 'nowhere' does not exist" "a missing folder"
: >afile
run "$GDIFFUSE" sample d.st -n 2 -o afile/s-%d.png
expect_error 1 "afile/s-%d.png: cannot write there: 'afile' is not a folder" "a file as the folder"
TOOL=ggan
run "$GGAN" train --data images.idx --labels labels.idx --latent 0 -o x.st
expect_error 2 "--latent: Value 0 not in range 1 to 4096" "--latent 0: a usage error naming --latent"
mkdir -p pngs
"$GDIFFUSE" sample d.st -n 2 -o pngs/p-%d.png
run "$GGAN" train --data pngs/ --labels labels.idx -o x.st
expect_error 2 "--labels 'labels.idx' is for an IDX image file, and 'pngs/' is a folder of PNGs \(unlabelled\)" \
  "--labels with a folder of PNGs"
TOOL=gscore
run "$GSCORE" fid c.st no-samples/
expect_error 1 "no-samples/: cannot open: no such file or folder" "gscore fid on a missing folder"
TOOL=gdiffuse
run "$GDIFFUSE" noise "$TESTS/../data/ankle-boot.png" --steps 1000 --strip "$(seq -s, 0 800)" --scale 64 -o x.png
expect_error 2 "--scale 64: the [0-9]+x[0-9]+ picture would be [0-9]+x[0-9]+, over the limit of 2147483648 samples" \
  "a picture too large names --scale"

# A tokenizer model with a NUL byte in a piece (the fuzzer's find): sentencepiece would abort on
# it; refused with a line, in a model file and inside a checkpoint alike.
TOOL=gtok
run "$GTOK" encode -m "$TESTS/fuzz/tokenizer_model/nul-in-a-piece" corpus.txt
expect_error 1 ".*nul-in-a-piece: not a tokenizer model \(piece 2 is empty or holds a NUL byte\)" "a NUL byte in a piece"
run "$GTOK" encode -m "$TESTS/fuzz/tokenizer_model/no-unk-piece" corpus.txt
expect_error 1 ".*no-unk-piece: not a tokenizer model \(it has no <unk> piece\)" "no unknown piece: not id 2^32-1"

# 12. A numbered set appears whole or not at all: when its third file cannot be written, the
# first two are not left behind.
mkdir -p set/s-2.png
run "$GDIFFUSE" sample d.st -n 4 -o set/s-%d.png
check "the third file fails the run" test "$status" -ne 0
check "and none of the set is written" test ! -e set/s-0.png -a ! -e set/s-1.png -a ! -e set/s-3.png
check "nor a temporary file left" test -z "$(find set -name '.*.tmp.*')"

# 8. Endless input ends at the 1 GiB limit every reader keeps, with the file named.
TOOL=gtok
run timeout 120 "$GTOK" train -q /dev/zero -o z.model
expect_error 1 "/dev/zero: more than 1 GiB of training text: over the limit" "gtok train /dev/zero"
TOOL=gtrain
run timeout 120 bash -c "{ printf 'GIDS\\001\\000\\000\\000'; cat /dev/zero; } | '$GTRAIN' -q --tokenizer char.model - -o x.st"
expect_error 1 "-: more than 268435456 token ids: over the limit" "an endless id stream into gtrain"

# 9. Temporary files left by SIGKILL name their writer; a later write in the folder removes
# those of this host whose process is gone, and leaves a live writer's alone.
host=$(hostname | tr -cd 'A-Za-z0-9-' | cut -c1-32)
dead=999999
while kill -0 $dead 2>/dev/null; do dead=$((dead - 1)); done
mkdir -p tmp
: >"tmp/.old.png.tmp.$host.$dead.AbCdEf"
sleep 60 &
alive=$!
: >"tmp/.busy.png.tmp.$host.$alive.AbCdEf"
TOOL=gdiffuse
run "$GDIFFUSE" sample d.st -n 1 -o tmp/new.png
expect_status 0 "a write beside stale temporary files"
check "the stale temporary file (writer gone) is removed" test ! -e "tmp/.old.png.tmp.$host.$dead.AbCdEf"
check "a live writer's is left alone" test -e "tmp/.busy.png.tmp.$host.$alive.AbCdEf"
kill $alive

# 10. -o through a symbolic link writes its target, as cp does, also when the target does not
# exist yet; the link stays a link.
ln -s target.png dangling.png
run "$GDIFFUSE" sample d.st -n 1 -o dangling.png
check "a dangling link: its target is written" test -s target.png
check "and the link is still a link" test -L dangling.png
ln -s target.png live.png
run "$GDIFFUSE" sample d.st -n 1 --seed 2 -o live.png
check "a live link: still a link, to the rewritten target" test -L live.png -a -s target.png
finish
