# Training over MPI (Open MPI's mpirun) and on threads: the same seed and settings give the same
# bytes on any layout (--threads 1, 2, 4; mpirun -np 2, 4 with one thread each), a run resumes
# under another layout, Ctrl-C under mpirun stops every rank at one step and rank 0 saves, a rank
# that dies fails the run and leaves the last checkpoint intact, and a tool not started by
# mpirun never starts MPI.
source "$TESTS/cli/lib.sh"
GTRAIN=${GTRAIN:?}
GDIFFUSE=${GDIFFUSE:?}
GSAMPLE=${GSAMPLE:?}
TOOL=gtrain
# As root mpirun needs these; beyond the 2 cores here, --oversubscribe.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI keeps its runtime's state to the end, in plugins it unloads: LeakSanitizer (the
# sanitizer build) cannot even name them, so it does not look under mpirun.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
mpi() { mpirun --oversubscribe -np "$@"; }
# same_bytes NAME PREFIX "RANKS" CMD...: CMD on --threads 1, 2 and 4 (-o PREFIX-t1.st ...), and
# under mpirun -np N for each of RANKS with one thread each: every checkpoint the same bytes.
same_bytes() {
  local name=$1 prefix=$2 ranks=$3 t n
  shift 3
  for t in 1 2 4; do "$@" --threads $t -o "$prefix-t$t.st"; done
  check "$name: --threads 1 and 2, the same bytes" cmp -s "$prefix-t1.st" "$prefix-t2.st"
  check "$name: --threads 1 and 4, the same bytes" cmp -s "$prefix-t1.st" "$prefix-t4.st"
  for n in $ranks; do
    mpi "$n" "$@" --threads 1 -o "$prefix-n$n.st"
    check "$name: mpirun -np $n gives the bytes of one process" cmp -s "$prefix-t1.st" "$prefix-n$n.st"
  done
}
check "mpirun is installed (scripts/install-deps.sh: openmpi-bin)" command -v mpirun

make_corpus corpus.txt
"$GTOK" train -q --model-type char corpus.txt -o char.model || exit 1
"$GTOK" encode -m char.model corpus.txt -o corpus.ids || exit 1
lm=(--tokenizer char.model --layers 2 --heads 2 --embd 32 --context 16 --batch 64 --eval-every 20 --eval-batches 2)

# gtrain: a batch of 64 sequences of 16 tokens is 4 shards (of at least 256 tokens).
same_bytes gtrain lm "2 4" "$GTRAIN" -q "${lm[@]}" --steps 40 corpus.ids
mpi 2 "$GTRAIN" -q "${lm[@]}" --steps 20 --decay-steps 40 --threads 1 corpus.ids -o lm-half.st
"$GTRAIN" -q --resume lm-half.st --steps 40 --threads 2 corpus.ids -o lm-resumed.st
check "gtrain: 20 steps on 2 ranks, resumed on 2 threads: the same bytes" cmp -s lm-t1.st lm-resumed.st
mpi 4 "$GTRAIN" -q --resume lm-half.st --steps 40 --threads 1 corpus.ids -o lm-resumed4.st
check "gtrain: resumed on 4 ranks: the same bytes" cmp -s lm-t1.st lm-resumed4.st
run mpi 2 "$GTRAIN" "${lm[@]}" --steps 40 --threads 1 --log lm.tsv --plot lm.png corpus.ids -o lm-logged.st
check "gtrain under mpirun: one banner (rank 0 reports)" test "$(grep -c ' parameters (' err)" -eq 1
check "and one log row per step" test "$(wc -l <lm.tsv)" -eq 41
# --time-limit under mpirun: the ranks plan one total (the fewest steps any rank timed to fit)
# and stop together after it (a rank that stopped alone would leave the other waiting).
run mpi 2 "$GTRAIN" "${lm[@]}" --steps 1000000 --warmup 10 --time-limit 0.05 --threads 1 --log planned.tsv \
  corpus.ids -o planned.st
planned=$(sed -n 's/.*time limit: \([0-9]*\) steps fit in 0.05 minutes.*/\1/p' err)
check "gtrain --time-limit under mpirun: one plan ($planned steps), a checkpoint (status $status)" \
  test "$status" -eq 0 -a -s planned.st -a "$(grep -c 'steps fit in' err)" -eq 1
check "and the log ends by the planned step" test "$(tail -1 planned.tsv | cut -f1)" -le "${planned:-0}"
run mpi 3 "$GTRAIN" -q "${lm[@]}" --steps 4 --threads 1 corpus.ids -o x.st
check "mpirun -np 3 for 4 shards: refused" test "$status" -ne 0
check "with one line that says why" grep -q "^gtrain: mpirun -np 3: the batch is 4 shards, which go to 1, 2 or 4 ranks" err

# gdiffuse train: a batch of 64 images is 4 shards (of at least 16 images).
make_images
unet=(--data images.idx --labels labels.idx --channels 8,16 --groups 4 --time-dim 16 --batch 64 --T 50 --warmup 5)
same_bytes gdiffuse d "2 4" "$GDIFFUSE" train -q "${unet[@]}" --steps 12
mpi 2 "$GDIFFUSE" train -q "${unet[@]}" --steps 6 --decay-steps 12 --threads 1 -o d-half.st
"$GDIFFUSE" train -q --resume d-half.st --data images.idx --labels labels.idx --steps 12 --threads 1 -o d-resumed.st
check "gdiffuse: 6 steps on 2 ranks, resumed in one process: the same bytes" cmp -s d-t1.st d-resumed.st

# gscore train: a batch of 128 is 4 shards of 32 images; 100 images make one short batch (shards
# of 32, 32, 32 and 4 images, each loss weighted by its share).
GSCORE=${GSCORE:?}
cls=(--data images.idx --labels labels.idx --limit 100 --channels 4,8 --features 8 --batch 128)
same_bytes gscore c "2 4" "$GSCORE" train -q "${cls[@]}" --steps 6
mpi 2 "$GSCORE" train -q "${cls[@]}" --steps 3 --decay-steps 6 --threads 1 -o c-half.st
"$GSCORE" train -q --resume c-half.st --data images.idx --labels labels.idx --steps 6 --threads 2 -o c-resumed.st
check "gscore: 3 steps on 2 ranks, resumed on 2 threads: the same bytes" cmp -s c-t1.st c-resumed.st

# ggan train: a batch of 64 is 2 shards of 32 (128: 4); batch normalization adds its statistics up over
# the shards (and ranks) in the gradients' tree. WGAN-GP with classes: the penalty, in shards too.
GGAN=${GGAN:?}
gan=(--data images.idx --labels labels.idx --latent 8 --g-channels 16 --d-channels 8 --batch 64)
same_bytes ggan g 2 "$GGAN" train -q "${gan[@]}" --steps 6
mpi 2 "$GGAN" train -q "${gan[@]}" --steps 3 --threads 1 -o g-half.st
"$GGAN" train -q --resume g-half.st --data images.idx --labels labels.idx --steps 6 --threads 2 -o g-resumed.st
check "ggan: 3 steps on 2 ranks, resumed on 2 threads: the same bytes" cmp -s g-t1.st g-resumed.st
wgan=("${gan[@]}" --batch 128 --loss wgan-gp --conditional --d-steps 2)
same_bytes "ggan wgan-gp" w 4 "$GGAN" train -q "${wgan[@]}" --steps 3

# Sampling under mpirun: each rank takes its share of the images (each seeded by its index), and
# rank 0 writes exactly the files of one process; 3 ranks for 5 images splits them unevenly.
"$GDIFFUSE" sample -q d-t1.st --prompt 1 --sampler ddpm --steps 10 -n 5 --trajectory tr-1.png --gif g-1.gif -o s-1.png
mpi 3 "$GDIFFUSE" sample -q d-t1.st --prompt 1 --sampler ddpm --steps 10 -n 5 --trajectory tr-3.png --gif g-3.gif \
  -o s-3.png
check "gdiffuse sample: mpirun -np 3 writes the grid of one process" cmp -s s-1.png s-3.png
check "and its trajectory" cmp -s tr-1.png tr-3.png
check "and its animation" cmp -s g-1.gif g-3.gif
"$GDIFFUSE" sample -q d-t1.st --prompt 1 --sampler ddpm --steps 10 -n 2 -o s-first.png
"$GDIFFUSE" sample -q d-t1.st --prompt 1 --sampler ddpm --steps 10 -n 5 -o each-%d.png
"$GDIFFUSE" sample -q d-t1.st --prompt 1 --sampler ddpm --steps 10 -n 1 -o one.png
check "an image depends on its seed and index, not on how many are drawn" same_pixels one.png each-0.png
mkdir -p split
mpi 2 "$GDIFFUSE" sample -q d-t1.st --prompt 1 --sampler ddpm --steps 10 -n 5 -o split/each-%d.png
check "numbered images under mpirun -np 2: the same files" \
  bash -c 'for i in 0 1 2 3 4; do cmp -s each-$i.png split/each-$i.png || exit 1; done'
"$GGAN" sample g-t1.st -n 9 -o gan-1.png
mpi 2 "$GGAN" sample g-t1.st -n 9 -o gan-2.png
check "ggan sample: mpirun -np 2 writes the grid of one process" cmp -s gan-1.png gan-2.png
mkdir -p ref
"$GGAN" sample g-t1.st -n 9 -o ref/r-%d.png
"$GSCORE" fid c-t1.st --ref ref split/ >fid-1.txt 2>/dev/null
mpi 3 "$GSCORE" fid c-t1.st --ref ref split/ >fid-3.txt 2>/dev/null
check "gscore fid: mpirun -np 3 prints what one process does" cmp -s fid-1.txt fid-3.txt
check "(a distance was printed)" grep -q '^FID ' fid-1.txt

# Ctrl-C under mpirun (it gives the ranks SIGTERM): every rank stops at one step, rank 0 saves.
mpirun --oversubscribe -np 2 "$GTRAIN" "${lm[@]}" --steps 1000000 --threads 1 corpus.ids -o stopped.st 2>err &
pid=$!
sleep 3
kill -INT $pid
wait $pid
check "Ctrl-C under mpirun saves a checkpoint" test -s stopped.st
check "and says so once" test "$(grep -c 'interrupted: saved step' err)" -eq 1
check "the saved checkpoint samples" "$GSAMPLE" stopped.st -n 4 --seed 1 -p the
at=$(sed -n 's/.*interrupted: saved step \([0-9]*\) .*/\1/p' err)
mpi 2 "$GTRAIN" -q --resume stopped.st --steps $((at + 5)) --threads 1 corpus.ids -o stopped.st
check "and resumes under mpirun" test $? -eq 0
no_temp_files "after Ctrl-C under mpirun"

# A rank that dies: the run fails and says so; the last checkpoint stays intact.
mpirun --oversubscribe -np 2 "$GTRAIN" "${lm[@]}" --steps 1000000 --save-every 100 --threads 1 corpus.ids \
  -o dies.st >out 2>err &
pid=$!
# Until the first checkpoint (step 100; 13 s under ASan on a loaded machine: up to a minute).
for _ in $(seq 300); do [ -s dies.st ] && break; sleep 0.2; done
rank1=""
for p in $(pgrep -f "gtrain.*dies.st"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && rank1=$p
done
check "rank 1 found" test -n "$rank1"
kill -KILL "$rank1"
wait $pid
status=$?
check "a dead rank fails the run (status $status)" test "$status" -ne 0
check "mpirun says which rank died" grep -q "rank 1 .* exited on signal 9" err
check "the last checkpoint is intact (it samples)" "$GSAMPLE" dies.st -n 4 --seed 1 -p the

# Not started by mpirun: MPI is never started, and Open MPI's runtime need not be on PATH.
run env PATH=/nonexistent "$GTRAIN" -q "${lm[@]}" --steps 4 corpus.ids -o nompi.st
check "gtrain without Open MPI on PATH" test "$status" -eq 0 -a -s nompi.st
check "gsample does not even link MPI" bash -c "! ldd '$GSAMPLE' | grep -q libmpi"
finish
