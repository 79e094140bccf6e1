# Faults while the tools work, with fixed seeds and bounded time: SIGKILL and SIGTERM at many
# points of every trainer's run (each step saving, so that many land inside a checkpoint's
# write): the checkpoint is always a whole one, old or new, and resuming from it gives the
# bytes of a run never interrupted. A full disk under each kind of output, a read-only file
# system and /dev/full: one line naming the file, a non-zero exit, no partial file and no
# temporary file left.
source "$TESTS/cli/lib.sh"
every_tool
make_char_ids
make_images

# Each trainer: its run (without -o), and how to resume one (the data again, the settings from
# the checkpoint).
lm=("$GTRAIN" -q --tokenizer char.model --layers 2 --heads 2 --embd 32 --context 16 --batch 8 --eval-every 1000
  --steps 80 corpus.ids)
lm_resume=("$GTRAIN" -q corpus.ids)
unet=("$GDIFFUSE" train -q --data images.idx --labels labels.idx --channels 8,16 --groups 4 --time-dim 16 --batch 16
  --T 50 --steps 40)
unet_resume=("$GDIFFUSE" train -q --data images.idx --labels labels.idx)
gan=("$GGAN" train -q --data images.idx --labels labels.idx --latent 8 --g-channels 16 --d-channels 8 --batch 16
  --steps 80)
gan_resume=("$GGAN" train -q --data images.idx --labels labels.idx)
cls=("$GSCORE" train -q --data images.idx --labels labels.idx --channels 4,8 --features 8 --batch 16 --steps 80)
cls_resume=("$GSCORE" train -q --data images.idx --labels labels.idx)

# faults NAME: the uninterrupted run (saving every step, timed), then SIGKILL and SIGTERM at eight
# moments spread over such a run; each checkpoint an interrupted run leaves must be whole, and
# resume to the uninterrupted bytes.
faults() {
  local name=$1 signal status whole=0 exact=0 tries=0 start took fraction
  local -n cmd=$1 resume=${1}_resume
  start=$(date +%s%N)
  "${cmd[@]}" --save-every 1 -o "$name-ref.st" || { fail "$name: the uninterrupted run"; return; }
  took=$(( ($(date +%s%N) - start) / 1000000 ))  # ms
  for fraction in 15 25 35 45 55 65 75 85; do
    for signal in KILL TERM; do
      rm -f "$name-cut.st"
      "${cmd[@]}" --save-every 1 -o "$name-cut.st" 2>/dev/null &
      local pid=$!
      sleep "$(awk -v t="$took" -v f="$fraction" 'BEGIN {printf "%.3f", t * f / 100000}')"
      kill -s "$signal" $pid 2>/dev/null
      wait $pid
      status=$?
      [ $status -ne 0 ] && [ -e "$name-cut.st" ] || continue  # finished, or stopped before its first save
      tries=$((tries + 1))
      # Whole: it resumes (a partial file would not load), and to the uninterrupted bytes.
      if "${resume[@]}" --resume "$name-cut.st" --save-every 1 -o "$name-resumed.st" 2>err; then
        whole=$((whole + 1))
        cmp -s "$name-ref.st" "$name-resumed.st" && exact=$((exact + 1))
      elif grep -q "is at step [0-9]* already" err; then  # the signal came during the last save
        whole=$((whole + 1))
        cmp -s "$name-ref.st" "$name-cut.st" && exact=$((exact + 1))
      else
        sed "s/^/  $name after SIG$signal at $fraction% (exit $status): /" err >&2
      fi
      find . -name ".$name-cut.st.tmp.*" -delete  # SIGKILL's leftovers (a later write removes them too)
    done
  done
  check "$name: interrupted runs left checkpoints to check ($tries of 16)" test $tries -ge 2
  check "$name: every checkpoint left was whole ($whole of $tries)" test $whole -eq $tries
  check "$name: and resumed to the uninterrupted bytes ($exact of $tries)" test $exact -eq $tries
}
faults lm
faults unet
faults gan
faults cls

# A full disk under each kind of output: a 96 KiB tmpfs (as root; otherwise a skip line).
mkdir -p full
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=96k tmpfs full 2>/dev/null; then
  trap 'umount "$WORK/full" "$WORK/ro" 2>/dev/null; rm -rf "$WORK"' EXIT
  cat /dev/zero >full/filler 2>/dev/null  # not a byte left
  TOOL=gtrain
  run "${lm[@]}" --steps 2 -o full/lm.st
  expect_error 1 "full/lm.st: .*(no space left on device|cannot sync|cannot create)" "a checkpoint on a full disk"
  truncate -s -8192 full/filler  # room for a log's first hundred rows
  run "${lm[@]}" --steps 400 --log full/log.tsv -o lm-logged.st
  check "a log on a full disk: the run fails" test "$status" -ne 0
  check "but its checkpoint is saved first" "$GSAMPLE" lm-logged.st -n 2 -p the
  cat /dev/zero >>full/filler 2>/dev/null
  run "${lm[@]}" --steps 2 --plot full/loss.png -o lm-plotted.st
  expect_error 1 "full/loss.png: .*(no space left on device|cannot sync|cannot create)" "a loss plot on a full disk"
  TOOL=gtok
  run "$GTOK" train -q --model-type char corpus.txt -o full/tok.model
  expect_error 1 "full/tok.model: .*(no space left on device|cannot sync|cannot create)" "a tokenizer model on a full disk"
  TOOL=gdiffuse
  "${unet[@]}" --steps 2 -o unet.st 2>/dev/null
  run "$GDIFFUSE" sample -q unet.st -n 64 --scale 8 -o full/grid.png
  expect_error 1 "full/grid.png: .*(no space left on device|cannot sync|cannot create)" "a sample grid on a full disk"
  run "$GDIFFUSE" sample -q unet.st -n 8 --gif full/reverse.gif -o grid.png
  expect_error 1 "full/reverse.gif: .*(no space left on device|cannot sync|cannot create)" "an animation on a full disk"
  rm -f full/log.tsv  # a log is written in place (for tail -f), as far as it got
  run "$GDIFFUSE" sample -q unet.st -n 64 --scale 4 -o full/s-%02d.png
  check "numbered samples on a full disk: the run fails" test "$status" -ne 0
  check "and leaves none of the set" test -z "$(ls full | grep -v filler)"
  TOOL=gtok
  run "$GTOK" encode -m char.model corpus.txt -o full/ids
  expect_error 1 "full/ids: .*(no space left on device|cannot sync|cannot create)" "encoded ids on a full disk"
  check "no temporary file left on the full disk" test -z "$(find full -name '.*.tmp.*')"

  # A read-only file system: refused at once, nothing written.
  mkdir -p ro
  if mount -t tmpfs -o ro,size=64k tmpfs ro 2>/dev/null; then
    TOOL=gtrain
    run "${lm[@]}" --steps 2 -o ro/lm.st
    expect_error 1 "ro/lm.st: .*read-only file system" "a checkpoint on a read-only file system"
    TOOL=ggan
    "${gan[@]}" --steps 1 -o gan.st 2>/dev/null
    run "$GGAN" sample gan.st -n 4 -o ro/g.png
    expect_error 1 "ro/g.png: .*read-only file system" "samples on a read-only file system"
  else
    echo "skip: cannot mount a read-only tmpfs here" >&2
  fi
else
  echo "skip: full-disk and read-only cases need root (mount -t tmpfs)" >&2
fi

# /dev/full: every write fails with ENOSPC.
TOOL=gtok
run "$GTOK" encode -m char.model corpus.txt -o /dev/full
expect_error 1 "/dev/full: write error: no space left on device" "gtok encode -o /dev/full"
TOOL=gsample
run bash -c "'$GSAMPLE' lm-ref.st -n 50 -p the >/dev/full"
expect_error 1 "-: write error: no space left on device" "gsample >/dev/full"
finish
