# The train state a checkpoint holds is as untrusted as the command line: every setting read
# back is checked with the command line's rules, one line names the file and the setting, and
# nothing is written. Also: outputs are checked before the first step, and the shared options
# read the same in every trainer.
source "$TESTS/cli/lib.sh"
GTRAIN=${GTRAIN:?}
GGAN=${GGAN:?}
GDIFFUSE=${GDIFFUSE:?}
GSCORE=${GSCORE:?}

# edit IN OUT KEY VALUE: a copy of a checkpoint with its saved setting KEY set to VALUE (JSON;
# "-" removes it).
edit() { edit_meta "$1" "$2" settings "$3" "$4"; }

make_corpus corpus.txt
"$GTOK" train -q --model-type char corpus.txt -o char.model || exit 1
"$GTOK" encode -m char.model corpus.txt -o corpus.ids || exit 1
lm=(--tokenizer char.model --layers 1 --heads 2 --embd 16 --context 8 --batch 4)
"$GTRAIN" -q "${lm[@]}" --steps 4 corpus.ids -o lm.st || exit 1

TOOL=gtrain
edit lm.st zero.st batch 0
run "$GTRAIN" --resume zero.st --steps 8 corpus.ids -o x.st
expect_error 1 "zero.st: saved setting 'batch': 0 is outside 1..65536$" "a batch of 0 in a checkpoint"
edit lm.st frac.st val_fraction 5
run "$GTRAIN" --resume frac.st --steps 8 corpus.ids -o x.st
expect_error 1 "frac.st: saved setting 'val_fraction': 5 is outside \[0, 0.9\]$" "a validation share of 5"
edit lm.st huge.st lr 1e300
run "$GTRAIN" --resume huge.st --steps 8 corpus.ids -o x.st
expect_error 1 "huge.st: saved setting 'lr': 1e\+300 is outside \(0, 1000000\]$" "a learning rate of 1e300"
edit lm.st text.st lr '"fast"'
run "$GTRAIN" --resume text.st --steps 8 corpus.ids -o x.st
expect_error 1 "text.st: saved setting 'lr': \"fast\" is not a number$" "a learning rate that is text"
edit lm.st gone.st warmup -
run "$GTRAIN" --resume gone.st --steps 8 corpus.ids -o x.st
expect_error 1 "gone.st: the saved settings have no 'warmup'$" "a setting missing"
edit lm.st order.st min_lr 0.5
run "$GTRAIN" --resume order.st --steps 8 corpus.ids -o x.st
expect_error 1 "order.st: the saved settings: --min-lr is above --lr$" "settings that contradict each other"
check "nothing written" test ! -e x.st

# NaN and infinities on the command line (CLI11's own range checks let NaN through).
run "$GTRAIN" "${lm[@]}" --lr nan corpus.ids -o x.st
expect_error 2 "--lr: nan is not a finite number" "--lr nan"
run "$GTRAIN" "${lm[@]}" --grad-clip inf corpus.ids -o x.st
expect_error 2 "--grad-clip: inf is not a finite number" "--grad-clip inf"
run "$GTRAIN" "${lm[@]}" --time-limit nan corpus.ids -o x.st
expect_error 2 "--time-limit: nan is not a finite number" "--time-limit nan"

# Outputs: checked before the first step; two outputs on one path refused.
run "$GTRAIN" "${lm[@]}" --steps 4 corpus.ids -o no/such/dir/lm.st
expect_error 1 "no/such/dir/lm.st: cannot write there: the folder 'no/such/dir' does not exist$" "-o in a missing folder"
run "$GTRAIN" "${lm[@]}" --steps 4 --log same.out --plot same.out corpus.ids -o lm2.st
expect_error 2 "--log and --plot name the same file 'same.out'" "two outputs on one path"
run "$GTRAIN" "${lm[@]}" --steps 4 --log ./lm2.st corpus.ids -o lm2.st
expect_error 2 "-o and --log name the same file '\./lm2.st'" "the log on the checkpoint's path"
check "nothing written" test ! -e lm2.st -a ! -e same.out

# A log that cannot be written: at the start (a full disk, /dev/full) the run ends before its
# first step; in the middle (its reader gone), the checkpoint is saved before the run stops.
run "$GTRAIN" -q "${lm[@]}" --steps 4 --log /dev/full corpus.ids -o full.st
expect_error 1 "/dev/full: write error: no space left on device$" "a log on a full disk"
mkfifo log.fifo
head -c 300 log.fifo >/dev/null &
run "$GTRAIN" -q "${lm[@]}" --steps 100000 --log log.fifo corpus.ids -o cut.st
check "a log whose reader goes away stops the run (status $status)" test "$status" -ne 0
check "and the checkpoint is saved first" test -s cut.st

# The GAN: a discriminator step count of 0 (it crashed the tool before) and a batch of 0.
make_images
images=(--data images.idx --labels labels.idx)
TOOL=ggan
"$GGAN" train -q "${images[@]}" --latent 8 --g-channels 16 --d-channels 8 --batch 8 --steps 2 -o gan.st || exit 1
edit gan.st dsteps.st d_steps 0
run "$GGAN" train --resume dsteps.st --steps 4 "${images[@]}" -o x.st
expect_error 1 "dsteps.st: saved setting 'd_steps': 0 is outside 1..100$" "d_steps 0 in a GAN checkpoint"
edit gan.st gbatch.st batch 0
run "$GGAN" train --resume gbatch.st --steps 4 "${images[@]}" -o x.st
expect_error 1 "gbatch.st: saved setting 'batch': 0 is outside 1..16384$" "a batch of 0 in a GAN checkpoint"
TOOL=gdiffuse
"$GDIFFUSE" train -q "${images[@]}" --channels 8,16 --groups 4 --time-dim 16 --batch 8 --T 50 --steps 2 -o d.st || exit 1
edit d.st dbatch.st batch 0
run "$GDIFFUSE" train --resume dbatch.st --steps 4 "${images[@]}" -o x.st
expect_error 1 "dbatch.st: saved setting 'batch': 0 is outside 1..16384$" "a batch of 0 in a diffusion checkpoint"
run "$GDIFFUSE" train --resume d.st "${images[@]}" -o d.st
expect_error 2 "the checkpoint is at step 2 already: give --steps above it" "resume at the saved total"
"$GDIFFUSE" train -q --resume d.st --steps 3 "${images[@]}" --limit 8 -o d3.st 2>err
check "--limit with --resume: ignored, with a warning" grep -q "warning: --limit ignored" err
TOOL=gscore
"$GSCORE" train -q "${images[@]}" --channels 4,8 --features 8 --batch 8 --steps 2 -o c.st || exit 1
edit c.st cbatch.st batch 0
run "$GSCORE" train --resume cbatch.st --steps 4 "${images[@]}" -o x.st
expect_error 1 "cbatch.st: saved setting 'batch': 0 is outside 1..16384$" "a batch of 0 in a classifier checkpoint"

# The shared options are in every trainer's --help.
for option in --resume --steps --seed --threads --save-every --no-optimizer --log --plot --time-limit --quiet; do
  for tool in "$GTRAIN" "$GDIFFUSE train" "$GGAN train" "$GSCORE train"; do
    check "$option in ${tool##*/} --help" bash -c "$tool --help | grep -qE -- '(^| |,)$option( |$)'"
  done
done
no_temp_files "after the errors"
finish
